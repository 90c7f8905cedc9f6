"""A tiny random-weight Qwen2 model written as a GGUF file that llama.cpp and transformers load.

Its vocabulary is the 256 byte tokens plus Qwen's special tokens, so SmallCoder's FIM prompts
work on it; it trains and runs in milliseconds, which lets CI test the whole adapter path.
Greedy output is printable ASCII on one line and never ends by itself.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from model.prompts import END_OF_TEXT, FIM_TOKENS

HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
INTERMEDIATE = 128
CONTEXT = 2048
SPECIALS = (END_OF_TEXT, *FIM_TOKENS)


def _byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode table: the strings a byte-level BPE vocabulary stores."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    table = dict(zip(printable, codes, strict=True))
    return [chr(table[byte]) for byte in range(256)]


VOCAB = len(_byte_tokens()) + len(SPECIALS)


def tiny_config():
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, intermediate_size=INTERMEDIATE,
        max_position_embeddings=CONTEXT, rms_norm_eps=1e-6, rope_theta=10000.0,
        tie_word_embeddings=False, bos_token_id=256, eos_token_id=256,
    )


def write_tiny_qwen_gguf(path: Path, seed: int = 0) -> Path:
    """A random Qwen2-shaped model in F32, with a byte-level vocabulary and Qwen's specials."""
    import torch
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(tiny_config())
    with torch.no_grad():
        # Only printable ASCII gets a non-zero logit, so greedy output is readable one-line text
        # (and tests can compare completions) rather than stray bytes.
        printable = torch.zeros(VOCAB, dtype=torch.bool)
        printable[ord(" "):ord("~") + 1] = True
        model.lm_head.weight[~printable] = 0.0
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, LAYERS)
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("tiny-qwen2-test")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(INTERMEDIATE)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    byte_tokens = _byte_tokens()
    writer.add_token_list([*byte_tokens, *SPECIALS])
    writer.add_token_types([gguf.TokenType.NORMAL] * len(byte_tokens)
                           + [gguf.TokenType.CONTROL] * len(SPECIALS))
    writer.add_token_merges([f"{byte_tokens[ord(' ')]} {byte_tokens[ord(' ')]}"])
    writer.add_bos_token_id(256)
    writer.add_eos_token_id(256)
    writer.add_add_bos_token(False)
    for name, tensor in model.state_dict().items():
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise ValueError(f"no GGUF name for {name}")
        writer.add_tensor(mapped, tensor.detach().float().numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
