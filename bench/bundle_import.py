"""What a cold Lambda pays to import the app from its bundle, against importing it from source.

`make synth`'s bundle (deployment.zip + the dependencies layer, unpacked as Lambda lays them out
in /var/task and /opt/python) is imported by the runtime's Python, isolated from this machine's
packages (-I -S), as the runtime does on a cold start. Each figure is the import time of the app
over the import time of `import chalice, boto3` in the same interpreter and layout (the
baseline), measured in fresh processes, interleaved. The same ratio from source (this checkout,
its virtualenv) is measured in the same run; the goal is a bundled ratio no worse than it.

    python -m bench.bundle_import        (part of make bench)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.report import expect, spread, write

ROOT = Path(__file__).resolve().parent.parent
RUNS = 9
# Timed inside the child: interpreter start-up is not the app's cost, and is the same either way.
PROBE = """
import json, sys, time
sys.path[:0] = {paths!r}
started = time.perf_counter()
{imports}
took = time.perf_counter() - started
import app
print(json.dumps({{"seconds": took, "routes": len(app.app.routes), "chalice": sys.modules["chalice"].__file__}}))
"""
IMPORTS = {"baseline": "import chalice, boto3", "app": "import app"}


def environment(variables: dict[str, object]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({k: v if isinstance(v, str) else "resolved-at-deploy" for k, v in variables.items()})
    env.update({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench"})
    return env


def once(python: list[str], paths: list[str], what: str, cwd: Path, env: dict[str, str], home: str) -> float:
    done = subprocess.run([*python, "-c", PROBE.format(paths=paths, imports=IMPORTS[what])], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)
    expect(done.returncode == 0, f"{what} import failed: {done.stderr[-2000:]}")
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    expect(seen["routes"] > 20, f"the app imported with {seen['routes']} routes")
    expect(seen["chalice"].startswith(home), f"chalice came from {seen['chalice']}, not from {home}")
    return float(seen["seconds"])


def main() -> None:
    from infra.build import synth
    from infra.bundle import runtime_python

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        sam = json.loads(synth("dev", out / "synth").read_text())
        task, opt = out / "task", out / "opt"
        for archive, into in (("deployment.zip", task), ("layer.zip", opt)):
            with zipfile.ZipFile(out / "synth" / archive) as zf:
                zf.extractall(into)
        sizes = {archive: round((out / "synth" / archive).stat().st_size / 2**20, 2)
                 for archive in ("deployment.zip", "layer.zip")}
        env = environment(sam["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"])
        venv = Path(sys.executable)
        layouts = {
            "bundle": ([runtime_python(), "-I", "-S"], [str(task), str(opt / "python")], task, str(out)),
            "source": ([str(venv)], [str(ROOT)], ROOT, str(venv.parent.parent)),
        }
        seconds: dict[str, dict[str, list[float]]] = {k: {w: [] for w in IMPORTS} for k in layouts}
        for python, paths, cwd, home in layouts.values():
            once(python, paths, "app", cwd, env, home)  # warm the file cache: every round reads the same files
        for _ in range(RUNS):
            for layout, (python, paths, cwd, home) in layouts.items():
                for what in IMPORTS:
                    seconds[layout][what].append(once(python, paths, what, cwd, env, home))
    results = {}
    for layout, by in seconds.items():
        ms = {what: spread([s * 1000 for s in values], 1) for what, values in by.items()}
        results[layout] = {"app_ms": ms["app"], "baseline_ms": ms["baseline"],
                           "ratio_app_over_baseline": round(ms["app"]["median"] / ms["baseline"]["median"], 2)}
    ratio = round(results["bundle"]["ratio_app_over_baseline"] / results["source"]["ratio_app_over_baseline"], 2)
    write("bundle_import", "fresh processes, interleaved: `import app` and `import chalice, boto3` timed inside "
          "the child (perf_counter), the bundle by the runtime's Python isolated (-I -S) from /var/task and "
          "/opt/python as Lambda lays them out, the source by this checkout's virtualenv; medians",
          {"fresh_processes_per_figure": RUNS}, results, bundle_ratio_over_source_ratio=ratio, goal="at most 1.0",
          zipped_mb=sizes)


if __name__ == "__main__":
    main()
