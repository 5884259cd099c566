"""The built function (issue #14, "Artifact"): where it is, whether it is current, its size.

`make build` writes `.aws-sam/build/KeyfixFunction`: `sam build` of CodeUri src/ with the pinned
src/requirements.txt, keyfix.sim and keyfix.demo removed, then every module precompiled
(unchecked-hash .pyc). Its cold start is measured by bench/coldstart.py (rows "artifact: ...",
bench/artifact_child.py). Here: whether it still matches the working tree (a stale artifact
measures other code), building it with `make build`, and its size as `make build` prints it
(`du -sk`) plus file counts and the size of a zip -9 of it.

The function is built for arm64 (template.yaml `Architectures: [arm64]`), so the artifact's
native extensions (pydantic_core, wrapt) are aarch64 builds that cannot load on an x86_64
bench machine: pydantic_core fails to import (every event is then `undetermined`) and wrapt
silently falls back to pure Python. On such a machine the cold start is measured on a *host
twin*: a copy of the artifact in bench/out/ in which only each foreign extension module is
replaced by the same distribution and version built for this machine (`pip download
--no-deps --only-binary=:all:`, kept in bench/out/wheels). Every .py and .pyc is the
artifact's own; results.json lists the replacements.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / ".aws-sam" / "build" / "KeyfixFunction"
SRC = ROOT / "src"
NOT_SHIPPED = ("keyfix/sim/", "keyfix/demo/")  # the Makefile removes them after sam build


def _shipped_sources(base: Path, under: str) -> dict[str, Path]:
    """Source files of the package `under` in `base`, by path relative to base (no bytecode)."""
    out = {}
    for path in (base / under).rglob("*"):
        rel = path.relative_to(base).as_posix()
        if path.is_file() and "__pycache__" not in path.parts and not rel.startswith(NOT_SHIPPED) \
                and path.suffix != ".pyc" and ".egg-info" not in rel:
            out[rel] = path
    return out


def stale_files(artifact: Path = ARTIFACT, src: Path = SRC) -> list[str]:
    """Files of keyfix and requirements.txt that differ between src/ and the artifact, or
    exist on one side only: empty when the artifact is what `make build` would ship now."""
    want = _shipped_sources(src, "keyfix")
    have = _shipped_sources(artifact, "keyfix")
    differ = sorted(set(want) ^ set(have))
    differ += sorted(rel for rel in set(want) & set(have) if want[rel].read_bytes() != have[rel].read_bytes())
    req = "requirements.txt"
    if not (artifact / req).is_file() or (artifact / req).read_bytes() != (src / req).read_bytes():
        differ.append(req)
    return differ


def state(artifact: Path = ARTIFACT) -> dict:
    if not (artifact / "keyfix" / "handler.py").is_file():
        return {"path": str(artifact), "exists": False, "current": False, "stale_files": []}
    stale = stale_files(artifact)
    return {"path": str(artifact), "exists": True, "current": not stale, "stale_files": stale}


def build(log, out_dir: Path) -> dict:
    """`make build` (sam validate, sam build, bytecode), its output in out_dir/artifact-build.log."""
    log("artifact: make build (sam validate --lint, sam build, compileall); log in bench/out/artifact-build.log")
    started = time.monotonic()
    done = subprocess.run(["make", "build"], cwd=ROOT, capture_output=True, text=True)
    (out_dir / "artifact-build.log").write_text(done.stdout + done.stderr)
    return {"command": "make build", "exit": done.returncode, "seconds": round(time.monotonic() - started, 1),
            "output_tail": (done.stdout + done.stderr)[-1500:] if done.returncode else ""}


def size(artifact: Path = ARTIFACT) -> dict:
    """As `make build` prints it (du -sk), plus files, and a zip -9 like the one sam deploy uploads."""
    kib = int(subprocess.run(["du", "-sk", str(artifact)], capture_output=True, text=True, check=True)
              .stdout.split()[0])
    files = [p for p in artifact.rglob("*") if p.is_file()]
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for path in files:
                archive.write(path, path.relative_to(artifact).as_posix())
        zipped = handle.tell()
    return {
        "unzipped_kib": kib, "unzipped_mb": kib / 1024,
        "files": len(files), "py_files": sum(1 for p in files if p.suffix == ".py"),
        "pyc_files": sum(1 for p in files if p.suffix == ".pyc"),
        "bytes": sum(os.path.getsize(p) for p in files), "zipped_mb": zipped / 1024 / 1024,
    }


def prepare(log, out_dir: Path, build_when_needed: bool = True) -> dict:
    """The artifact to measure: built first when missing or stale (unless build_when_needed is
    false). "measurable" says whether its rows can run; "current" whether they measure the tree."""
    info = state()
    if not info["current"] and build_when_needed:
        why = "missing" if not info["exists"] else f"stale ({len(info['stale_files'])} files differ from src/)"
        log(f"artifact: {why}")
        built = build(log, out_dir)
        info = {**state(), "build": built}
    info["measurable"] = info["exists"]
    if not info["exists"]:
        info["why_not_measured"] = ("not built: run `make build`" if not build_when_needed
                                    else "`make build` did not produce it (bench/out/artifact-build.log)")
    elif not info["current"]:
        info["why_not_current"] = (f"{len(info['stale_files'])} files differ from src/ "
                                   f"({', '.join(info['stale_files'][:5])}{', ...' if len(info['stale_files']) > 5 else ''})")
    if info["exists"]:
        info["size"] = size()
    return info


# ---- the host twin (see the module docstring) ---------------------------------------------------


def elf_machine(path: Path) -> int | None:
    """The ELF header's e_machine (62 x86_64, 183 aarch64), or None if path is not ELF."""
    with open(path, "rb") as handle:
        head = handle.read(20)
    if head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def foreign_extensions(artifact: Path) -> list[str]:
    """Extension modules of the artifact built for another machine than this interpreter's."""
    host = elf_machine(Path(os.path.realpath(sys.executable)))
    return sorted(p.relative_to(artifact).as_posix() for p in artifact.rglob("*.so")
                  if elf_machine(p) not in (None, host))


def distribution_of(artifact: Path, rel: str) -> tuple[str, str]:
    """(name, version) of the installed distribution whose RECORD lists rel."""
    for record in artifact.glob("*.dist-info/RECORD"):
        if any(line.split(",", 1)[0] == rel for line in record.read_text().splitlines()):
            name, version = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)
            return name, version
    raise LookupError(f"no *.dist-info/RECORD in {artifact} lists {rel}")


def _host_wheel(name: str, version: str, wheels: Path) -> Path:
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(wheels.glob(pattern))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "-d", str(wheels), f"{name}=={version}"], check=True, capture_output=True, text=True)
        found = sorted(wheels.glob(pattern))
    if not found:
        raise LookupError(f"pip download {name}=={version} gave no wheel in {wheels}")
    return found[-1]


def host_twin(artifact: Path, out_dir: Path, log, wheels: Path | None = None) -> dict:
    """The directory to measure: the artifact itself when every extension module loads here,
    otherwise its host twin in out_dir (wheels cached in `wheels`, by default out_dir/wheels).
    {"dir", "twin", "replaced": [{"file", "with", "wheel"}]}."""
    foreign = foreign_extensions(artifact)
    if not foreign:
        return {"dir": str(artifact), "twin": False, "replaced": []}
    twin = out_dir / f"artifact-{os.uname().machine}"
    log(f"artifact: {len(foreign)} extension modules built for another machine ({', '.join(foreign)}): "
        f"measuring a host twin in {twin.relative_to(ROOT) if twin.is_relative_to(ROOT) else twin}")
    shutil.rmtree(twin, ignore_errors=True)
    shutil.copytree(artifact, twin, symlinks=True)
    host = elf_machine(Path(os.path.realpath(sys.executable)))
    replaced = []
    for rel in foreign:
        name, version = distribution_of(artifact, rel)
        wheel = _host_wheel(name, version, wheels or out_dir / "wheels")
        folder, module = rel.rpartition("/")[0], rel.rpartition("/")[2].split(".")[0]
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.rpartition("/")[0] == folder
                       and m.rpartition("/")[2].split(".")[0] == module and m.endswith(".so")]
            if len(members) != 1:
                raise LookupError(f"{wheel.name} has {members} for {rel}")
            (twin / rel).unlink()
            archive.extract(members[0], twin)
        if elf_machine(twin / members[0]) != host:
            raise LookupError(f"{wheel.name}'s {members[0]} is not built for this machine")
        replaced.append({"file": rel, "with": members[0], "wheel": wheel.name})
    return {"dir": str(twin), "twin": True, "replaced": replaced}
