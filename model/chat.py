"""Asking an instruct model: a system and a user message in the GGUF's own chat template, and
the model's answer, optionally begun for it. Explain, refactor and the agent all ask this way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from model.engine import CancelToken, Engine, GenerationParams, GenerationResult, StopRule


def ask(engine: Engine, system: str, user: str, params: GenerationParams, *,
        earlier: Sequence[tuple[str, str]] = (), reply_start: str = "",
        cancel: CancelToken | None = None,
        stop_rule: StopRule | None = None, yield_turn: Callable[[], None] | None = None,
        on_text: Callable[[str], None] | None = None) -> GenerationResult:
    """The model's reply to `user`; `reply_start` is put in its mouth (the result's text is
    what follows it). `earlier`: the conversation before it, (question, answer) turns; asked
    again on the same head, a follow-up finds its earlier turns in the engine's cache."""
    turns = [message for question, answer in earlier for message in (
        {"role": "user", "content": question}, {"role": "assistant", "content": answer})]
    tokens = engine.chat_prompt([{"role": "system", "content": system}, *turns,
                                 {"role": "user", "content": user}])
    if reply_start:
        tokens += engine.tokenize(reply_start)
    return engine.generate(tokens, params, cancel=cancel, on_text=on_text, stop_rule=stop_rule,
                           yield_turn=yield_turn)
