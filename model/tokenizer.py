"""The model's tokenizer alone (llama.cpp's vocab-only load): exact token counts in a fraction
of a second, for tools that count but never generate (`smallcoder pack`), and the token side of
the remote engine, which lays prompts out here and has them evaluated elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from model.errors import ModelError
from model.loading import (
    chat_tokens,
    check_coder_model,
    check_gguf_header,
    plain_tokens,
    single_special_id,
)


class VocabularyTokenizer:
    def __init__(self, model_path: Path, *, check_coder: bool = False) -> None:
        import llama_cpp

        check_gguf_header(model_path)
        self.name = model_path.name.removesuffix(".gguf")
        self._llm = llama_cpp.Llama(model_path=str(model_path), vocab_only=True, verbose=False)
        if check_coder:
            check_coder_model(self._llm, model_path)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain text, as the engine's `tokenize` gives them."""
        return plain_tokens(self._llm, text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def tokenize_with_specials(self, text: str) -> list[int]:
        """Token ids of text in which special-token names are those tokens."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def special_token(self, name: str) -> int:
        token = single_special_id(self._llm, name)
        if token is None:
            raise ModelError(f"{self.name} has no special token {name}")
        return token

    def token_bytes(self, token: int) -> bytes:
        """The bytes of one token (special tokens by name); pieces of a UTF-8 character too."""
        return self._llm.detokenize([token], special=True)

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of `tokens`, special tokens shown by name."""
        return self._llm.detokenize(list(tokens), special=True).decode("utf-8", errors="replace")

    @property
    def eos_token(self) -> int:
        return self._llm.token_eos()

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> list[int]:
        return chat_tokens(self._llm, messages, self.name)
