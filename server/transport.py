"""The LSP base protocol on stdin: frames cut from the byte stream, bounded, and never fatal.

Headers are read as vscode-jsonrpc reads them (names in any case, blanks around the value); a
frame that cannot be right is skipped up to the next `Content-Length` header, so one bad frame
costs that message alone instead of leaving the server deaf or out of memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import BinaryIO

from server.memory import LARGE_MESSAGE_BYTES, release_soon

logger = logging.getLogger(__name__)

# vscode-jsonrpc's own messages are a few megabytes at most (a whole document on didOpen).
MAX_MESSAGE_BYTES = 64 * 1024**2
MAX_HEADER_BYTES = 8 * 1024
# An editor writes a message at once: a body that stops arriving this long had a wrong length.
BODY_STALL_S = 2.0
READ_CHUNK_BYTES = 64 * 1024

HEADER_END = re.compile(rb"\r?\n\r?\n")
CONTENT_LENGTH = re.compile(rb"content-length", re.IGNORECASE)
HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class FramingError(ValueError):
    """The bytes at the head of the stream are not an LSP header block."""


class FrameParser:
    """Cuts LSP frames out of the bytes fed to it; a pure state machine, no I/O.

    `next_body` returns the next complete body; `abandon_body` gives up on a body whose bytes
    stopped arriving, and `reject` on one that was not JSON: both look for the next header.
    """

    def __init__(self, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._max_message_bytes = max_message_bytes
        # The body length of the frame whose header was read, while its body is awaited.
        self._body_bytes: int | None = None
        self.framing_errors = 0

    @property
    def awaiting_body(self) -> bool:
        return self._body_bytes is not None

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def abandon_body(self) -> None:
        """The awaited body is short of its length: look for a header inside what came."""
        if self._body_bytes is not None:
            self._body_bytes = None
            self._resync(FramingError("a body stopped arriving before its Content-Length"))

    def reject(self, body: bytes) -> None:
        """A body that is not JSON may hold the next frame (its length was too long): look
        for a header inside it, before the bytes that followed it."""
        self._buffer[:0] = body
        self._resync(FramingError("a body that is not JSON"), start=0)

    def next_body(self) -> bytes | None:
        while True:
            if self._body_bytes is None:
                try:
                    self._body_bytes = self._read_header()
                except FramingError as error:
                    self._resync(error)
                    continue
                if self._body_bytes is None:
                    return None
            if len(self._buffer) < self._body_bytes:
                return None
            body = bytes(self._buffer[:self._body_bytes])
            del self._buffer[:self._body_bytes]
            self._body_bytes = None
            return body

    def _read_header(self) -> int | None:
        """The body length of the complete header block at the head of the buffer, which it
        consumes; None while the block is incomplete."""
        start = len(self._buffer) - len(self._buffer.lstrip(b"\r\n"))
        del self._buffer[:start]
        end = HEADER_END.search(self._buffer, 0, MAX_HEADER_BYTES + 4)
        if end is None:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise FramingError(f"no end of headers in {MAX_HEADER_BYTES} bytes")
            return None
        length = content_length(bytes(self._buffer[:end.start()]), self._max_message_bytes)
        del self._buffer[:end.end()]
        return length

    def _resync(self, error: FramingError, start: int = 1) -> None:
        """Drop bytes up to the next `Content-Length` from `start` on."""
        self.framing_errors += 1
        found = CONTENT_LENGTH.search(self._buffer, start)
        if found is not None:
            dropped = found.start()
        else:
            # The tail may be the start of a header cut by the read.
            dropped = max(1, len(self._buffer) - len(b"content-length") + 1)
        logger.warning("framing error: %s; skipping %d bytes to the next header", error,
                       min(dropped, len(self._buffer)))
        del self._buffer[:dropped]


def content_length(block: bytes, max_message_bytes: int) -> int:
    """The Content-Length of a header block (vscode-jsonrpc's rules), within bounds."""
    length = None
    for line in block.splitlines():
        name, colon, value = line.partition(b":")
        if not colon or not HEADER_NAME.fullmatch(name.strip()):
            raise FramingError(f"not a header line: {line[:80]!r}")
        if name.strip().lower() == b"content-length":
            if not value.strip().isdigit():
                raise FramingError(f"Content-Length is not a number: {value[:40]!r}")
            length = int(value.strip())
    if length is None:
        raise FramingError("a header block without Content-Length")
    if length > max_message_bytes:
        raise FramingError(f"Content-Length {length} is over the {max_message_bytes} "
                           f"bytes a message may have")
    return length


async def read_frames(stream: BinaryIO, receive: Callable[[bytes], bool],
                      stall_s: float = BODY_STALL_S) -> None:
    """Hand every body read from `stream` to `receive` until the stream ends.

    `receive` returns False for a body that is not JSON; the parser then looks inside it for
    the frame a wrong length swallowed. A thread reads the stream (blocking reads work on every
    platform's stdin) and waits for each chunk to be parsed, so a flood cannot queue up.
    """
    loop = asyncio.get_running_loop()
    parser = FrameParser()
    ended: asyncio.Future[None] = loop.create_future()
    stall: asyncio.TimerHandle | None = None

    def deliver() -> None:
        while (body := parser.next_body()) is not None:
            if not receive(body):
                parser.reject(body)
            if len(body) >= LARGE_MESSAGE_BYTES:
                release_soon()

    def stalled() -> None:
        parser.abandon_body()
        deliver()

    async def fed(chunk: bytes) -> None:
        nonlocal stall
        if stall is not None:
            stall.cancel()
        parser.feed(chunk)
        try:
            deliver()
        except BrokenPipeError:
            raise
        except Exception:  # one message's failure must not end the reading
            logger.exception("a message could not be handled")
        stall = loop.call_later(stall_s, stalled) if parser.awaiting_body else None

    def pump() -> None:
        descriptor = stream.fileno()
        try:
            while chunk := os.read(descriptor, READ_CHUNK_BYTES):
                asyncio.run_coroutine_threadsafe(fed(chunk), loop).result()
        except (OSError, RuntimeError) as error:  # RuntimeError: the loop closed meanwhile
            logger.warning("reading the client's messages stopped: %s", error)
        finally:
            loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(None))

    threading.Thread(target=pump, name="lsp-reader", daemon=True).start()
    await ended
