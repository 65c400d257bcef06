"""`make synth STAGE=dev`: the deployable stack, synthesized offline.

1. renders the merge template (infra/template) for the stage: identity, data, queues, timer
   machine, alarms, and per function its environment, policy, concurrency and failure paths;
2. runs `chalice package --merge-template` on a copy of the app without requirements.txt (Chalice
   would build the dependencies for this machine's Python; infra/bundle.py builds them for the
   runtime instead);
3. replaces Chalice's deployment.zip with one compiled for the runtime, adds layer.zip.

build/<stage>/ then holds sam.json, deployment.zip and layer.zip, ready for `sam deploy`.
Prints the template's path on stdout and nothing else (progress goes to stderr).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chalice.utils import to_cfn_resource_name

ROOT = Path(__file__).resolve().parent.parent
APP_FILES = ("app.py", "chalicelib", ".chalice")
PLACEHOLDER_MARKERS = ("REPLACE_WITH", "REPLACE_ME", "CHANGE_ME")


def stage_queue_names(stage: str) -> dict[str, str]:
    """Queue names per stage, so two stages in one account never share (or collide on) a queue.
    The app reads them where its SQS handlers are declared, so they are set while packaging."""
    return {"TIMER_QUEUE_NAME": f"buyer-protection-{stage}-timers",
            "EVIDENCE_QUEUE_NAME": f"buyer-protection-{stage}-evidence-uploads",
            "REFUND_QUEUE_NAME": f"buyer-protection-{stage}-refunds"}


def function_ids() -> list[str]:
    """The logical ids Chalice gives the app's Lambda functions."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sys.path.insert(0, str(ROOT))
    from app import app

    return ["APIHandler"] + [to_cfn_resource_name(source.name) for source in app.event_sources]


def copy_app(dest: Path) -> None:
    """The app as Chalice should package it: code and config, no requirements.txt."""
    shutil.rmtree(dest, ignore_errors=True)
    for name in APP_FILES:
        source, target = ROOT / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "deployments", "venv"))
        else:
            shutil.copyfile(source, target)


def find_placeholders(template: dict[str, Any]) -> list[str]:
    text = json.dumps(template)
    return [marker for marker in PLACEHOLDER_MARKERS if marker in text]


def synth(stage: str, out: Path) -> Path:
    from infra.bundle import bundle
    from infra.template import cloudformation

    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    queues = stage_queue_names(stage)
    env = {**os.environ, **queues, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    merge = out / "merge.json"
    merge.write_text(json.dumps(cloudformation(stage, function_ids(), queues["TIMER_QUEUE_NAME"],
                                               queues["EVIDENCE_QUEUE_NAME"], queues["REFUND_QUEUE_NAME"]), indent=2))
    project = out / "project"
    copy_app(project)
    packaged = out / "chalice"
    shutil.rmtree(packaged, ignore_errors=True)
    subprocess.run([str(Path(sys.executable).parent / "chalice"), "package", "--stage", stage,
                    "--merge-template", str(merge.resolve()), str(packaged.resolve())],
                   cwd=project, env=env, check=True, stdout=sys.stderr)
    template = json.loads((packaged / "sam.json").read_text())
    leftovers = find_placeholders(template)
    if leftovers:
        raise SystemExit(f"the template still holds placeholders ({', '.join(leftovers)}): "
                         "every id must come from the stack")
    sam = out / "sam.json"
    sam.write_text(json.dumps(template, indent=2))
    bundle(packaged / "deployment.zip", out)
    shutil.rmtree(project)
    shutil.rmtree(packaged)
    print(f"synth: {stage} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return sam


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    out = Path(args.out or ROOT / "build" / args.stage)
    print(synth(args.stage, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
