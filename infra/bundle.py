"""The code that runs in Lambda: built for the runtime, not for this machine.

Two archives, both with compiled bytecode for the runtime's Python:

- ``layer.zip`` (one Lambda layer shared by every function): the pinned requirements, installed
  from PyPI as wheels built for the runtime (``--platform manylinux...`` + ``--only-binary``, never
  compiled here), with botocore's service data pruned to the services the app calls;
- ``deployment.zip``: what ``chalice package`` zips (app.py, chalicelib/, Chalice's runtime module).

The layer only changes when requirements.txt does, so it is built once per requirements and kept
in build/.cache/; the app archive is rebuilt each time (a second or two).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / ".cache"

# The Lambda runtime targeted: Amazon Linux 2023 (glibc 2.34) with CPython 3.12, x86_64.
RUNTIME = "python3.12"
PYTHON_VERSION = "3.12"
ARCHITECTURE = "x86_64"
GLIBC = (2, 34)
# Wheel platforms that run on that glibc (pip does not widen a --platform to older glibcs itself).
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
# The AWS services the app makes clients for (chalicelib/bootstrap.py; the Stripe secret in
# chalicelib/config.py); botocore's data for the ~440 others is dropped.
# tests/integration/test_least_privilege.py checks the recorded calls stay within this list.
BOTOCORE_SERVICES = ("dynamodb", "events", "s3", "secretsmanager", "sqs", "ssm", "stepfunctions")
# Files no function imports: console scripts and pip's own byproducts.
DROPPED_TOP_LEVEL = ("bin",)


def requirements_digest(requirements: Path = ROOT / "requirements.txt") -> str:
    text = requirements.read_text() + RUNTIME + ",".join(PLATFORMS) + ",".join(BOTOCORE_SERVICES)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def runtime_python() -> str:
    """A CPython of the runtime's version, to compile bytecode the runtime loads.

    ``RUNTIME_PYTHON`` if set; else ``python3.12`` on PATH; else a pyenv-installed 3.12."""
    candidates = [os.environ.get("RUNTIME_PYTHON") or "", shutil.which(f"python{PYTHON_VERSION}") or ""]
    pyenv = shutil.which("pyenv")
    if pyenv:
        listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, check=False).stdout
        for version in sorted((v.strip() for v in listed.split() if v.strip().startswith(PYTHON_VERSION + ".")),
                              reverse=True):
            prefix = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True, check=False).stdout
            candidates.append(str(Path(prefix.strip()) / "bin" / f"python{PYTHON_VERSION}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == PYTHON_VERSION:
            return candidate
    raise SystemExit(f"no Python {PYTHON_VERSION} found to compile the Lambda bytecode: install it "
                     f"(e.g. `pyenv install {PYTHON_VERSION}`) or set RUNTIME_PYTHON=<path to python{PYTHON_VERSION}>")


def install_requirements(target: Path, requirements: Path = ROOT / "requirements.txt") -> None:
    """The pinned requirements as the runtime's wheels, from PyPI, into ``target``."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-compile", "--target", str(target), *platforms, "--only-binary=:all:",
                    "--implementation", "cp", "--python-version", PYTHON_VERSION, "-r", str(requirements)],
                   check=True, stdout=sys.stderr)


def prune(site: Path) -> None:
    """Drop what no function loads: other services' botocore data, scripts, stray bytecode."""
    data = site / "botocore" / "data"
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in BOTOCORE_SERVICES:
            shutil.rmtree(entry)
    for name in DROPPED_TOP_LEVEL:
        shutil.rmtree(site / name, ignore_errors=True)
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache)


def compile_bytecode(tree: Path, python: str, shown_as: str) -> None:
    """Bytecode for every module, checked by hash only when asked (unchecked-hash): Lambda's
    file times are not the build's, so timestamp-checked .pyc files would be ignored."""
    subprocess.run([python, "-m", "compileall", "-q", "-j", "2", "--invalidation-mode", "unchecked-hash",
                    "-s", str(tree), "-p", shown_as, str(tree)], check=True, stdout=sys.stderr)


def write_zip(tree: Path, archive: Path, prefix: str = "") -> None:
    """A reproducible archive: sorted entries, fixed times, 0644 (0755 for shared objects)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(prefix + path.relative_to(tree).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            mode = 0o755 if (".so" in path.suffixes or path.stat().st_mode & stat.S_IXUSR) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(archive)


def layer_zip(python: str | None = None) -> Path:
    """The dependencies layer for the current requirements, built once and cached."""
    archive = CACHE / f"layer-{requirements_digest()}.zip"
    if archive.exists():
        return archive
    python = python or runtime_python()
    with tempfile.TemporaryDirectory(dir=CACHE.parent if CACHE.parent.exists() else None) as tmp:
        site = Path(tmp) / "python"
        install_requirements(site)
        prune(site)
        compile_bytecode(site, python, "/opt/python")
        write_zip(site, archive, prefix="python/")
    for stale in CACHE.glob("layer-*.zip"):
        if stale != archive:
            stale.unlink()
    return archive


def app_zip(chalice_zip: Path, archive: Path, python: str | None = None) -> None:
    """Chalice's archive of the app, rewritten with bytecode for the runtime."""
    python = python or runtime_python()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "task"
        with zipfile.ZipFile(chalice_zip) as zf:
            zf.extractall(tree)
        for cache in list(tree.rglob("__pycache__")):
            shutil.rmtree(cache)
        compile_bytecode(tree, python, "/var/task")
        write_zip(tree, archive)


def bundle(chalice_zip: Path, out: Path) -> tuple[Path, Path]:
    """deployment.zip (replacing Chalice's) and layer.zip in ``out``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    python = runtime_python()
    app = out / "deployment.zip"
    app_zip(chalice_zip, app, python)
    layer = out / "layer.zip"
    shutil.copyfile(layer_zip(python), layer)
    return app, layer
