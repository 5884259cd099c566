"""The built artifact's bench plumbing (issue #14, "Artifact"): a stale artifact is noticed,
extension modules built for another machine are found and swapped for this machine's build of
the same version, and bench/artifact_child.py loads only from the artifact. Fake artifacts in
tmp_path; no build, no download, no server."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
_spec = importlib.util.spec_from_file_location("bench_artifact", BENCH / "artifact.py")
artifact = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(artifact)

HOST = artifact.elf_machine(Path(os.path.realpath(sys.executable)))
OTHER = 183 if HOST != 183 else 62  # aarch64, or x86_64 on an aarch64 machine


def elf(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_an_artifact_is_current_until_a_shipped_source_or_the_requirements_change(tmp_path):
    src, art = tmp_path / "src", tmp_path / "art"
    for base in (src, art):
        write(base / "keyfix/handler.py", "x = 1\n")
        write(base / "requirements.txt", "boto3==1\n")
    write(src / "keyfix/sim/server.py", "not shipped\n")  # make build removes keyfix/sim
    write(art / "keyfix/__pycache__/handler.cpython-313.pyc", b"bytecode")
    assert artifact.stale_files(art, src) == []
    write(src / "keyfix/handler.py", "x = 2\n")
    write(src / "keyfix/new.py", "")
    write(art / "keyfix/gone.py", "")
    assert artifact.stale_files(art, src) == ["keyfix/gone.py", "keyfix/new.py", "keyfix/handler.py"]
    write(src / "keyfix/handler.py", "x = 1\n")
    (src / "keyfix/new.py").unlink()
    (art / "keyfix/gone.py").unlink()
    write(src / "requirements.txt", "boto3==2\n")
    assert artifact.stale_files(art, src) == ["requirements.txt"]


def fake_arm64_artifact(root: Path) -> Path:
    art = root / "KeyfixFunction"
    write(art / "native/__init__.py", "")
    write(art / "native/_ext.cpython-313-aarch64-linux-gnu.so", elf(OTHER))
    write(art / "native/helper.py", "y = 1\n")
    write(art / "native-1.2.dist-info/RECORD",
          "native/__init__.py,,\nnative/_ext.cpython-313-aarch64-linux-gnu.so,,\nnative/helper.py,,\n")
    write(art / "hostok/_fine.so", elf(HOST))
    return art


def test_only_extension_modules_for_another_machine_are_foreign(tmp_path):
    art = fake_arm64_artifact(tmp_path)
    assert artifact.foreign_extensions(art) == ["native/_ext.cpython-313-aarch64-linux-gnu.so"]
    assert artifact.distribution_of(art, "native/_ext.cpython-313-aarch64-linux-gnu.so") == ("native", "1.2")
    with pytest.raises(LookupError):
        artifact.distribution_of(art, "hostok/_fine.so")


def test_the_host_twin_swaps_only_the_foreign_extension_for_the_same_versions_host_build(tmp_path):
    art = fake_arm64_artifact(tmp_path)
    out = tmp_path / "out"
    wheel = out / "wheels" / "native-1.2-cp313-cp313-manylinux_x86_64.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as z:  # already downloaded: nothing is fetched
        z.writestr("native/__init__.py", "")
        z.writestr("native/_ext.cpython-313-host.so", elf(HOST))
        z.writestr("native/_other.cpython-313-host.so", elf(HOST))
    twin = artifact.host_twin(art, out, log=lambda _m: None)
    root = Path(twin["dir"])
    assert twin["twin"] is True and root != art
    assert twin["replaced"] == [{"file": "native/_ext.cpython-313-aarch64-linux-gnu.so",
                                 "with": "native/_ext.cpython-313-host.so", "wheel": wheel.name}]
    assert artifact.foreign_extensions(root) == []
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "hostok/_fine.so", "native-1.2.dist-info/RECORD", "native/__init__.py", "native/_ext.cpython-313-host.so",
        "native/helper.py"]
    assert (root / "native/helper.py").read_text() == "y = 1\n"
    assert (art / "native/_ext.cpython-313-aarch64-linux-gnu.so").exists(), "the artifact itself is untouched"


def test_an_artifact_whose_extensions_load_here_is_measured_as_it_is(tmp_path):
    art = tmp_path / "KeyfixFunction"
    write(art / "hostok/_fine.so", elf(HOST))
    assert artifact.host_twin(art, tmp_path / "out", log=lambda _m: None) == {
        "dir": str(art), "twin": False, "replaced": []}


# ---- bench/artifact_child.py: nothing from the venv -------------------------------------------------

PACKAGES = ("keyfix", "boto3", "botocore", "aws_lambda_powertools", "pydantic", "pydantic_core", "wrapt")


def run_child(art: Path, tmp_path: Path, what: str = "import boto3") -> tuple[int, dict]:
    result = tmp_path / "result.json"
    done = subprocess.run([sys.executable, "-I", "-S", "-B", str(BENCH / "artifact_child.py"), str(art), str(result),
                           what], capture_output=True, text=True, timeout=60)
    return done.returncode, json.loads(result.read_text())


def test_the_child_imports_from_the_artifact_and_records_where_from(tmp_path):
    art = tmp_path / "art"
    for name in PACKAGES:
        write(art / name / "__init__.py", "")
    code, out = run_child(art, tmp_path)
    assert code == 0
    assert out["under_artifact"] is True and out["extension_modules"] == []
    assert out["origins"]["boto3"] == {"file": str(art / "boto3/__init__.py"), "loaded": True}
    assert out["origins"]["keyfix"] == {"file": str(art / "keyfix/__init__.py"), "loaded": False}


def test_a_package_the_artifact_lacks_is_not_taken_from_the_venv(tmp_path):
    import wrapt  # the venv has it; the child must not see it

    assert wrapt.__file__
    art = tmp_path / "art"
    for name in PACKAGES:
        if name != "wrapt":
            write(art / name / "__init__.py", "")
    code, out = run_child(art, tmp_path)
    assert code == 3
    assert out["under_artifact"] is False
    assert out["origins"]["wrapt"] == {"file": None, "loaded": False}
