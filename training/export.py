"""Our converter from a peft LoRA adapter to a GGUF LoRA file that llama.cpp applies at run time.

GGUF layout (what llama.cpp's adapter loader reads): general.type=adapter, adapter.type=lora,
adapter.lora.alpha; per projection `blk.N.<attn_q|…|ffn_down>.weight.lora_a` holding peft's A
(r, in) and `.lora_b` holding B (out, r), untransposed, in F16. llama.cpp scales by alpha / r,
as peft does. Provenance (base sha256, dataset hash, steps, scores) goes under `smallcoder.*`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from model.adapters import GUARD_PASSED_KEY, PROVENANCE_PREFIX, SCORE_PREFIX
from training.machine import machine_threads

# Projections the adapter may touch, in Hugging Face names; llama.cpp has a slot for each.
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PEFT_PREFIX = "base_model.model."


class ExportError(Exception):
    """The adapter cannot be written as a GGUF LoRA; the message says why."""


@dataclass(frozen=True)
class Provenance:
    """Where an adapter came from; written into the GGUF so the file explains itself."""

    base_model: str
    base_sha256: str
    dataset_sha256: str
    steps: int
    scores: dict[str, float]
    guard_passed: bool | None = None


def export_adapter(adapter_dir: Path, out: Path, provenance: Provenance) -> Path:
    """Convert the peft adapter saved in `adapter_dir` into the GGUF LoRA file `out`."""
    from safetensors.numpy import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    _check_plain_lora(config)
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    layers = 1 + max(_layer_of(name) for name in tensors)
    pairs = gguf_lora_tensors(tensors, layers)

    scratch = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(scratch), "qwen2")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    writer.add_name(f"SmallCoder personal adapter for {provenance.base_model}")
    _add_provenance(writer, provenance, rank=int(config["r"]))
    for name, array in pairs.items():
        writer.add_tensor(name, array.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    scratch.replace(out)
    return out


def gguf_lora_tensors(peft_tensors: dict[str, np.ndarray], layers: int) -> dict[str, np.ndarray]:
    """peft's `…layers.N.self_attn.q_proj.lora_A.weight` → `blk.N.attn_q.weight.lora_a`."""
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, layers)
    out: dict[str, np.ndarray] = {}
    for name, array in peft_tensors.items():
        base_name, part = _split_lora_name(name)
        mapped = names.get_name(base_name, try_suffixes=(".weight",))
        if mapped is None:
            raise ExportError(f"no llama.cpp tensor for {base_name}: the adapter targets a "
                              f"module llama.cpp cannot adapt; train on {TARGET_MODULES}")
        out[f"{mapped}.lora_{part}"] = np.ascontiguousarray(array)
    for name in [name for name in out if name.endswith(".lora_a")]:
        a, b = out[name], out.get(name[:-1] + "b")
        if b is None or a.shape[0] != b.shape[1]:
            raise ExportError(f"{name}: A {a.shape} and B {None if b is None else b.shape} "
                              f"do not form a rank-r pair")
    return out


def _split_lora_name(name: str) -> tuple[str, str]:
    for part in ("A", "B"):
        marker = f".lora_{part}.weight"
        if name.endswith(marker):
            return name.removeprefix(PEFT_PREFIX)[: -len(marker)] + ".weight", part.lower()
    raise ExportError(f"{name} is not a LoRA A/B weight: only plain LoRA adapters export")


def _layer_of(name: str) -> int:
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1])


def _check_plain_lora(config: dict) -> None:
    unsupported = [flag for flag in ("use_dora", "use_rslora") if config.get(flag)]
    if config.get("bias", "none") != "none":
        unsupported.append(f"bias={config['bias']}")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        unsupported.append("per-module rank or alpha")
    if unsupported:
        raise ExportError(f"llama.cpp applies plain LoRA only (uniform r and alpha); this "
                          f"adapter uses {', '.join(unsupported)}: train it again without")


def _add_provenance(writer: gguf.GGUFWriter, provenance: Provenance, rank: int) -> None:
    writer.add_string(PROVENANCE_PREFIX + "base_model", provenance.base_model)
    writer.add_string(PROVENANCE_PREFIX + "base_sha256", provenance.base_sha256)
    writer.add_string(PROVENANCE_PREFIX + "dataset_sha256", provenance.dataset_sha256)
    writer.add_uint32(PROVENANCE_PREFIX + "steps", provenance.steps)
    writer.add_uint32(PROVENANCE_PREFIX + "rank", rank)
    for key, value in sorted(provenance.scores.items()):
        writer.add_float32(SCORE_PREFIX + key, float(value))
    if provenance.guard_passed is not None:
        writer.add_bool(GUARD_PASSED_KEY, provenance.guard_passed)


@dataclass(frozen=True)
class ExportCheck:
    """How faithfully llama.cpp applies an exported adapter: its logit shift (with adapter minus
    without, on a probe text) against peft's.

    On a Q4_K base llama.cpp quantizes activations, so its logits differ from torch's by
    `noise_rms` even without an adapter; a weakly trained adapter's shift is of that size, and
    its correlation at scale 1 measures the noise more than the file. The file is therefore
    also compared at `amplified_scale` (applied alike in llama.cpp and peft), chosen so that the
    shift stands well above the noise; the slope says whether the shifts have the same size.
    """

    correlation: float  # Pearson r at the adapter's own scale
    slope: float  # llama.cpp's shift per unit of peft's at that scale (1: the same size)
    shift_rms: float  # peft's shift at scale 1, in logits
    noise_rms: float  # llama.cpp's base logits against torch's, in logits
    amplified_scale: float
    amplified_correlation: float

    @property
    def faithful(self) -> bool:
        """Same direction above the noise, and the same size (a wrong alpha still correlates)."""
        return (self.amplified_correlation >= MIN_CORRELATION
                and abs(self.slope - 1) <= MAX_SLOPE_ERROR)

    def summary(self) -> str:
        return (f"llama.cpp vs peft logit shift: r = {self.correlation:.4f} (slope "
                f"{self.slope:.3f}; shift rms {self.shift_rms:.3f} against llama.cpp's own "
                f"arithmetic noise {self.noise_rms:.3f}), r = {self.amplified_correlation:.4f} "
                f"at scale {self.amplified_scale:.1f}: "
                f"{'faithful' if self.faithful else 'NOT faithful'}")


MIN_CORRELATION = 0.99
MAX_SLOPE_ERROR = 0.1
# The amplified comparison wants the shift this many times above the noise, within a scale cap.
SIGNAL_TO_NOISE = 20.0
MAX_AMPLIFIED_SCALE = 64.0


def check_export(base_gguf: Path, adapter_gguf: Path, peft_model,
                 tokens: list[int], threads: int | None = None) -> ExportCheck:
    """llama.cpp's logit shift from the adapter against peft's on `tokens` (see ExportCheck):
    at scale 1, then amplified above the noise. The shift (with adapter minus without) isolates
    the adapter's effect from the difference between the quantized base llama.cpp runs and the
    dequantized one torch trains. `threads` for both (None: the machine's count)."""
    import torch

    threads = threads or machine_threads()
    torch.set_num_threads(threads)
    llama_base = _llama_logits(base_gguf, None, tokens, threads=threads)
    peft_base = _peft_logits(peft_model, tokens, None)
    llama_shift = _llama_logits(base_gguf, adapter_gguf, tokens, 1.0, threads) - llama_base
    peft_shift = _peft_logits(peft_model, tokens, 1.0) - peft_base
    shift_rms, noise_rms = _rms(peft_shift), _rms(llama_base - peft_base)
    scale = float(np.clip(SIGNAL_TO_NOISE * noise_rms / max(shift_rms, 1e-12), 1.0,
                          MAX_AMPLIFIED_SCALE))
    amplified = _pearson(_llama_logits(base_gguf, adapter_gguf, tokens, scale, threads)
                         - llama_base,
                         _peft_logits(peft_model, tokens, scale) - peft_base)
    slope = float(np.dot(llama_shift.ravel(), peft_shift.ravel())
                  / max(float(np.dot(peft_shift.ravel(), peft_shift.ravel())), 1e-24))
    return ExportCheck(_pearson(llama_shift, peft_shift), slope, shift_rms, noise_rms, scale,
                       amplified)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def _peft_logits(peft_model, tokens: list[int], scale: float | None) -> np.ndarray:
    """Logits of the peft model with its adapter at `scale`, or without it (None)."""
    import torch
    from peft.tuners.lora import LoraLayer

    ids = torch.tensor([tokens])
    with torch.no_grad():
        if scale is None:
            with peft_model.disable_adapter():
                return peft_model(input_ids=ids).logits[0].double().numpy()
        layers = [module for module in peft_model.modules() if isinstance(module, LoraLayer)]
        for layer in layers:
            layer.scale_layer(scale)
        try:
            return peft_model(input_ids=ids).logits[0].double().numpy()
        finally:
            for layer in layers:
                layer.unscale_layer()


def _llama_logits(base_gguf: Path, adapter_gguf: Path | None, tokens: list[int],
                  scale: float = 1.0, threads: int | None = None) -> np.ndarray:
    import llama_cpp

    threads = threads or machine_threads()
    llm = llama_cpp.Llama(model_path=str(base_gguf), n_ctx=max(256, len(tokens) + 8),
                          n_batch=512, logits_all=True, lora_path=None if adapter_gguf is None
                          else str(adapter_gguf), lora_scale=scale, verbose=False,
                          n_threads=threads, n_threads_batch=threads)
    try:
        llm.eval(tokens)
        return np.array(llm.scores[: len(tokens)], dtype=np.float64)
    finally:
        llm.close()


def verify_export(base_gguf: Path, adapter_dir: Path, adapter_gguf: Path,
                  probe_tokens: list[int], threads: int | None = None) -> ExportCheck:
    """Load the peft adapter on the torch base from the same GGUF and compare logit shifts with
    llama.cpp's on the quantized base (see ExportCheck)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(base_gguf.parent),
                                                gguf_file=base_gguf.name, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.eval()
    return check_export(base_gguf, adapter_gguf, model, probe_tokens, threads)
