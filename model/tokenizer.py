"""The model's tokenizer alone (llama.cpp's vocab-only load): exact token counts in a fraction
of a second, for tools that count but never generate, such as `smallcoder pack`."""

from __future__ import annotations

from pathlib import Path

from model.engine import check_gguf_header, plain_tokens


class VocabularyTokenizer:
    def __init__(self, model_path: Path) -> None:
        import llama_cpp

        check_gguf_header(model_path)
        self.name = model_path.name.removesuffix(".gguf")
        self._llm = llama_cpp.Llama(model_path=str(model_path), vocab_only=True, verbose=False)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain text, as the engine's `tokenize` gives them."""
        return plain_tokens(self._llm, text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))
