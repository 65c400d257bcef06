"""The stack as `make synth` writes it, synthesized once per test session (the dependencies
layer itself is cached across sessions in build/.cache/, keyed by requirements.txt)."""
from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.synth import Synthesized


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from infra.build import synth

    out = tmp_path_factory.mktemp("synth")
    sam = synth("dev", out)
    return Synthesized("dev", out, json.loads(sam.read_text()))


@pytest.fixture(scope="session")
def unpacked(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(/var/task, /opt) as Lambda lays them out: the function's zip and the layer's."""
    root = tmp_path_factory.mktemp("lambda")
    task, opt = root / "task", root / "opt"
    with zipfile.ZipFile(synthesized.out / "deployment.zip") as zf:
        zf.extractall(task)
    with zipfile.ZipFile(synthesized.out / "layer.zip") as zf:
        zf.extractall(opt)
    yield task, opt
