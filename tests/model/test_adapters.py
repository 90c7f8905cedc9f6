"""Adapter files are checked before llama.cpp sees them: a broken one is refused by name."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from model.adapters import read_adapter_info
from model.errors import ModelError


def write_adapter(path: Path) -> bytes:
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.ones((4, 64), np.float16))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.ones((64, 4), np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def test_a_whole_adapter_is_read(tmp_path):
    write_adapter(tmp_path / "personal.gguf")
    assert read_adapter_info(tmp_path / "personal.gguf").label == "personal"


def test_an_adapter_cut_anywhere_is_refused_with_its_name(tmp_path):
    whole = write_adapter(tmp_path / "whole.gguf")
    truncated = tmp_path / "truncated.gguf"
    for length in range(0, len(whole), 5):
        truncated.write_bytes(whole[:length])
        with pytest.raises(ModelError, match=r"truncated\.gguf"):
            read_adapter_info(truncated)
