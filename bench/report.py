"""What every benchmark shares: the machine it ran on, the spread of repeated measurements, the
check that stops a benchmark on a wrong answer, and the JSON written under bench/results/."""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


class WrongAnswer(SystemExit):
    """A benchmark got an answer it did not expect: a number measured on it would be a lie."""


def expect(ok: bool, what: str) -> None:
    if not ok:
        raise WrongAnswer(f"bench stopped: {what}")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def spread(values: list[float], digits: int = 3) -> dict[str, Any]:
    """Median, the middle 80 % and the extremes of repeated measurements."""
    ordered = sorted(values)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))], digits)

    return {"n": n, "median": round(statistics.median(ordered), digits), "p10": at(0.10), "p90": at(0.90),
            "min": round(ordered[0], digits), "max": round(ordered[-1], digits)}


def write(name: str, method: str, repetitions: dict[str, Any], results: Any, **extra: Any) -> Path:
    """bench/results/<name>.json, and the same on standard output."""
    report = {"bench": name, "date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(),
              "method": method, "repetitions": repetitions, "results": results, **extra}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    json.dump(report, sys.stdout, indent=2)
    print()
    return path


def emulated_aws_environment() -> None:
    """What a bench over moto in its own process needs before anything imports boto3: fake
    credentials, one region, no endpoint override, quiet Powertools."""
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_LOG_LEVEL": "ERROR",
                       "POWERTOOLS_METRICS_DISABLED": "true"}.items():
        os.environ.setdefault(key, value)
    os.environ.pop("AWS_ENDPOINT_URL", None)
