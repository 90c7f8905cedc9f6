"""Loading a GGUF model with llama.cpp: checks that fail early with advice, how many layers
fit the GPU, how many threads to use, how plain text becomes tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psutil

from model.errors import ModelError
from model.prompts import FIM_TOKENS

# Room kept free on the GPU for llama.cpp's compute buffers, beyond weights and KV cache.
GPU_OVERHEAD_BYTES = 300 * 1024**2
GGUF_MAGIC = b"GGUF"
SUPPORTED_ARCHITECTURES = ("qwen2",)


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def gpu_layers_for_budget(
    budget_bytes: int, weights_bytes: int, n_layers: int, kv_cache_bytes: int
) -> int:
    """How many transformer layers fit in `budget_bytes` of VRAM with their share of the cache.

    The output layer and embeddings count as one more layer, as llama.cpp offloads them last.
    """
    if n_layers <= 0 or budget_bytes <= GPU_OVERHEAD_BYTES:
        return 0
    per_layer = (weights_bytes + kv_cache_bytes) / (n_layers + 1)
    fitting = int((budget_bytes - GPU_OVERHEAD_BYTES) // per_layer)
    return max(0, min(fitting, n_layers + 1))


def kv_cache_bytes(metadata: dict[str, str], context_tokens: int) -> int:
    """Size of an f16 KV cache for this model at `context_tokens`."""
    arch = metadata.get("general.architecture", "")
    n_layers = int(metadata.get(f"{arch}.block_count", 0))
    n_embd = int(metadata.get(f"{arch}.embedding_length", 0))
    n_head = int(metadata.get(f"{arch}.attention.head_count", 1))
    n_head_kv = int(metadata.get(f"{arch}.attention.head_count_kv", n_head))
    head_dim = n_embd // max(n_head, 1)
    return 2 * n_layers * context_tokens * n_head_kv * head_dim * 2


def plain_tokens(llm, text: str) -> list[int]:
    """Token ids of plain text for a llama_cpp.Llama: no BOS, special-token names not parsed
    (a user's file that mentions `<|fim_prefix|>` must not steer the prompt)."""
    if not text:
        return []
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


def check_gguf_header(path: Path) -> None:
    """Fail early, with advice, on a file that is not GGUF at all."""
    try:
        with path.open("rb") as source:
            magic = source.read(4)
    except OSError as error:
        raise ModelError(f"cannot read model file {path}: {error.strerror}") from error
    if magic != GGUF_MAGIC:
        raise ModelError(
            f"{path} is not a GGUF model file (it starts with {magic!r}); point SmallCoder at "
            f"a .gguf file or run `smallcoder model pull`"
        )


def gpu_layers_for_model(llama_cpp, path: Path, context_tokens: int, budget_bytes: int) -> int:
    """Layers of the model at `path` to offload within `budget_bytes` (0 without a GPU)."""
    if not llama_cpp.llama_supports_gpu_offload():
        return 0
    probe = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    metadata = dict(probe.metadata)
    arch = metadata.get("general.architecture", "")
    return gpu_layers_for_budget(
        budget_bytes,
        path.stat().st_size,
        int(metadata.get(f"{arch}.block_count", 0)),
        kv_cache_bytes(metadata, context_tokens),
    )


def single_special_id(llm, name: str) -> int | None:
    """The id of the special token spelled `name`, or None when the vocabulary has none."""
    ids = llm.tokenize(name.encode(), add_bos=False, special=True)
    return ids[0] if len(ids) == 1 else None


def check_coder_model(llm, path: Path) -> None:
    """Fail with advice unless `llm` (a llama_cpp.Llama, vocabulary only is enough) is a
    Qwen2.5-Coder model with its fill-in-the-middle tokens."""
    arch = llm.metadata.get("general.architecture", "unknown")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelError(
            f"{path.name} is a {arch!r} model; SmallCoder's prompts need a Qwen2.5-Coder "
            f"model ({', '.join(SUPPORTED_ARCHITECTURES)}): set SMALLCODER_MODEL to one"
        )
    missing = [name for name in FIM_TOKENS if single_special_id(llm, name) is None]
    if missing:
        raise ModelError(
            f"{path.name} has no fill-in-the-middle tokens {', '.join(missing)}: it is "
            f"not a Qwen2.5-Coder model; use qwen2.5-coder-1.5b-instruct-q4_k_m"
        )


def chat_tokens(llm, messages: Sequence[dict[str, str]], name: str) -> list[int]:
    """Tokens of a chat rendered with the GGUF's own chat template, ready to answer."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelError(f"{name} carries no chat template; use an Instruct model")

    def text_of(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    formatter = Jinja2ChatFormatter(template=template, eos_token=text_of(llm.token_eos()),
                                    bos_token=text_of(llm.token_bos()))
    rendered = formatter(messages=list(messages)).prompt
    return llm.tokenize(rendered.encode("utf-8"), add_bos=False, special=True)
