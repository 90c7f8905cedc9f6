"""Stopping a training run within a moment of Ctrl-C (or the server's Cancel, a SIGINT too).

Python runs a signal handler only between its own bytecodes, and a training step is one long
call into torch: a 0.5B model's backward pass on two cores ran for seconds with no Python in
it, so Ctrl-C waited for the step to end. Hooks on every decoder layer, in the forward and the
backward pass, ask whether a stop was requested and raise KeyboardInterrupt there: the step is
abandoned within one layer's work, and the loop saves the checkpoint of the last finished step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class StopRequest:
    """Set by the first SIGINT while training runs (a second one stops at once, even while the
    checkpoint is being written: the checkpoint folder is swapped in whole, so never half)."""

    def __init__(self) -> None:
        self._requested = threading.Event()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def request(self) -> None:
        self._requested.set()

    def check(self) -> None:
        """Raise KeyboardInterrupt when a stop was requested."""
        if self._requested.is_set():
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def on_sigint(self) -> Iterator[StopRequest]:
        """While inside, SIGINT requests a stop instead of raising wherever Python happens to
        be. Only the main thread can set handlers; elsewhere SIGINT keeps its own handling."""
        def handle(signum, frame) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.request()

        try:
            previous = signal.signal(signal.SIGINT, handle)
        except ValueError:  # not the main thread
            yield self
            return
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextlib.contextmanager
    def checked_in_every_layer(self, model) -> Iterator[None]:
        """Check for a stop before each decoder layer runs forward, and when the backward pass
        reaches its output."""
        layers = [module for module in model.modules()
                  if type(module).__name__.endswith("DecoderLayer")]

        def before_forward(module, args) -> None:
            self.check()

        def after_forward(module, args, output) -> None:
            hidden = output[0] if isinstance(output, tuple) else output
            if getattr(hidden, "requires_grad", False):
                hidden.register_hook(lambda grad: self.check())

        handles = [hook for layer in layers for hook in (
            layer.register_forward_pre_hook(before_forward),
            layer.register_forward_hook(after_forward))]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
