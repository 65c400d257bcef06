"""The Lambda code runs on the runtime it targets: wheels built for it, every shared library an
extension needs shipped or in the runtime's base, bytecode it loads, and a size that deploys fast."""
from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from infra.bundle import ARCHITECTURE, BOTOCORE_SERVICES, GLIBC, PYTHON_VERSION, RUNTIME, runtime_python

MB = 1024 * 1024
# What the python3.12 runtime (Amazon Linux 2023) provides to extensions: glibc's libraries, and
# the three the runtime itself links (CPython's zlib module needs libz; the runtime interface
# client is C++). These are also the libraries auditwheel leaves out of manylinux wheels.
RUNTIME_BASE = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
                "libresolv.so.2", "ld-linux-x86-64.so.2", "libgcc_s.so.1", "libstdc++.so.6", "libz.so.1"}
WHEEL_TAG = re.compile(r"^Tag: (?P<python>[^-]+)-(?P<abi>[^-]+)-(?P<platform>\S+)$", re.M)
MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(\w+)$")
LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def platform_glibc(platform: str) -> tuple[tuple[int, int], str] | None:
    legacy = re.match(r"^(manylinux1|manylinux2010|manylinux2014)_(\w+)$", platform)
    if legacy:
        return LEGACY[legacy.group(1)], legacy.group(2)
    m = MANYLINUX.match(platform)
    return ((int(m.group(1)), int(m.group(2))), m.group(3)) if m else None


def test_the_function_runs_on_the_runtime_with_the_layer(synthesized):
    cpy = f"cp{PYTHON_VERSION.replace('.', '')}"
    for function in synthesized.of_type("AWS::Serverless::Function").values():
        props = function["Properties"]
        assert props["Runtime"] == RUNTIME and props["Architectures"] == [ARCHITECTURE]
        assert props["Layers"] == [{"Ref": "DependenciesLayer"}] and props["CodeUri"] == "./deployment.zip"
    layer = synthesized.resources["DependenciesLayer"]["Properties"]
    assert layer["CompatibleRuntimes"] == [RUNTIME] and layer["ContentUri"] == "./layer.zip"
    assert cpy == "cp312"


def test_every_wheel_in_the_layer_is_built_for_the_runtime(unpacked):
    _, opt = unpacked
    wheels = sorted((opt / "python").glob("*.dist-info/WHEEL"))
    assert len(wheels) >= 10
    native = []
    for wheel in wheels:
        tags = [m.groupdict() for m in WHEEL_TAG.finditer(wheel.read_text())]
        assert tags, wheel
        if all(t["platform"] == "any" for t in tags):
            assert all(t["abi"] == "none" and t["python"].startswith("py") for t in tags), wheel
            continue
        native.append(wheel.parent.name)
        fits = [platform_glibc(t["platform"]) for t in tags if t["python"] in ("cp312", "cp311", "cp310", "cp39")
                and t["abi"] in ("cp312", "abi3")]
        assert any(f and f[0] <= GLIBC and f[1] == ARCHITECTURE for f in fits), (wheel.parent.name, tags)
    assert any(name.startswith("pillow-") for name in native) and any(n.startswith("cryptography-") for n in native)


def _elf(path: Path) -> tuple[str, list[str], list[tuple[int, int]]]:
    """(machine, DT_NEEDED, the GLIBC_x.y versions it needs)."""
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        needed: list[str] = []
        glibc: list[tuple[int, int]] = []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                needed += [tag.needed for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]  # type: ignore[attr-defined]
            if isinstance(section, GNUVerNeedSection):
                for _, auxiliaries in section.iter_versions():
                    for aux in auxiliaries:
                        m = re.match(r"^GLIBC_(\d+)\.(\d+)", aux.name)
                        if m:
                            glibc.append((int(m.group(1)), int(m.group(2))))
        return elf["e_machine"], needed, glibc


def test_every_shared_library_an_extension_needs_is_shipped_or_in_the_runtime(unpacked):
    task, opt = unpacked
    objects = [p for root in (task, opt) for p in root.rglob("*") if p.is_file() and re.search(r"\.so(\.|$)", p.name)]
    shipped = {p.name for p in objects}
    assert any(p.name.startswith("_imaging.") for p in objects)
    for path in objects:
        machine, needed, glibc = _elf(path)
        assert machine == "EM_X86_64", path
        missing = [lib for lib in needed if lib not in shipped and lib not in RUNTIME_BASE]
        assert not missing, (path.name, missing)
        assert max(glibc, default=(2, 0)) <= GLIBC, (path.name, max(glibc))


def test_every_module_ships_bytecode_the_runtime_loads_without_its_source_times(unpacked):
    magic = bytes.fromhex(subprocess.run([runtime_python(), "-c", "import importlib.util as u; print(u.MAGIC_NUMBER.hex())"],
                                         capture_output=True, text=True, check=True).stdout.strip())
    tag = f"cpython-{PYTHON_VERSION.replace('.', '')}"
    for root in unpacked:
        sources = [p for p in root.rglob("*.py")]
        assert sources
        for source in sources:
            pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            assert pyc.exists(), source
            header = pyc.read_bytes()[:8]
            assert header[:4] == magic, pyc
            assert int.from_bytes(header[4:8], "little") == 0b01, pyc  # hash-based, unchecked


def test_the_bundle_is_small(synthesized, unpacked):
    app, layer = synthesized.out / "deployment.zip", synthesized.out / "layer.zip"
    assert app.stat().st_size <= 10 * MB
    # The Lambda limits: 50 MB zipped for a direct upload, 250 MB unzipped with all layers.
    assert layer.stat().st_size <= 50 * MB
    unzipped = sum(i.file_size for z in (app, layer) for i in zipfile.ZipFile(z).infolist())
    assert unzipped <= 250 * MB
    data = unpacked[1] / "python" / "botocore" / "data"
    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == sorted(BOTOCORE_SERVICES)


def test_the_app_imports_from_the_bundle_alone_on_the_runtime_python(synthesized, unpacked):
    """Isolated from this machine's packages (-I -S): only /var/task and /opt/python, as in Lambda."""
    task, opt = unpacked
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    variables = synthesized.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    env.update({k: v if isinstance(v, str) else "resolved-at-deploy" for k, v in variables.items()})
    env.update({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x", "LAMBDA_TASK_ROOT": str(task)})
    probe = f"""
import sys, json
sys.path[:0] = [{str(task)!r}, {str(opt / 'python')!r}]
import app, boto3, PIL._imaging, PIL._webp, cryptography.hazmat.bindings._rust, jwt.algorithms
from chalicelib.adapters import stripe_payments
clients = [boto3.client(s).meta.service_model.service_name for s in {list(BOTOCORE_SERVICES)!r}]
print(json.dumps({{"clients": clients, "pil": PIL._imaging.__file__, "routes": len(app.app.routes),
                  "rsa": jwt.algorithms.has_crypto}}))
"""
    done = subprocess.run([runtime_python(), "-I", "-S", "-c", probe], capture_output=True, text=True, env=env,
                          cwd=task, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(seen["clients"]) == len(BOTOCORE_SERVICES)
    assert seen["pil"].startswith(str(opt)) and seen["rsa"] is True and seen["routes"] > 20
