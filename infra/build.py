"""`make package STAGE=dev`: the deployable stack, synthesized offline.

Writes build/<stage>/merge.json (tables, per-function environment and least-privilege policies,
from infra/resources.py), then runs `chalice package --merge-template` into build/<stage>/, which
holds sam.json and deployment.zip, ready for `sam deploy` / `aws cloudformation deploy`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from chalice.utils import to_cfn_resource_name

ROOT = Path(__file__).resolve().parent.parent


def function_ids() -> list[str]:
    """The logical ids Chalice gives the app's Lambda functions."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sys.path.insert(0, str(ROOT))
    from app import app

    return ["APIHandler"] + [to_cfn_resource_name(source.name) for source in app.event_sources]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    out = Path(args.out or ROOT / "build" / args.stage)
    out.mkdir(parents=True, exist_ok=True)

    from chalicelib.config import evidence_queue_name, timer_queue_name
    from infra.resources import cloudformation

    merge = out / "merge.json"
    merge.write_text(json.dumps(cloudformation(function_ids(), timer_queue_name(), evidence_queue_name()), indent=2))
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    subprocess.run([str(Path(sys.executable).parent / "chalice"), "package", "--stage", args.stage,
                    "--merge-template", str(merge), str(out)], cwd=ROOT, env=env, check=True)
    print(f"{out / 'sam.json'} and {out / 'deployment.zip'} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
