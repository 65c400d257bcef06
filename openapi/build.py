"""``make openapi``: the OpenAPI document from its sources.

1. ``openapi/components/requests.yaml`` is written from ``chalicelib/api/schemas.py``, the one
   source of the request bodies (the edge validates with the same dicts).
2. ``openapi/openapi.yaml`` (components per area, by ``$ref``; the paths of ``openapi/paths/*.yaml``,
   listed in the order of app.py's routes; the action names of ``available_actions``, those the
   routes declare; the timeline's event names, ``TIMELINE_EVENTS``) is bundled by the pinned
   Redocly CLI into the top-level ``openapi.yaml`` that clients and the tests read.

3. The transition table of ``docs/RULES.md`` (between its markers) is written from ``TRANSITIONS``
   in ``chalicelib/domain/disputes.py``, so an action's transitions are written once, in the code.

``python openapi/build.py`` does all three; tests/integration/test_openapi.py and
tests/unit/test_rules_doc.py check that the committed files are what this produces.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "openapi"
REQUESTS = SOURCES / "components" / "requests.yaml"
BUNDLE = ROOT / "openapi.yaml"
REDOCLY = Path(sys.prefix) / "node" / "node_modules" / ".bin" / "redocly"
RULES = ROOT / "docs" / "RULES.md"
TABLE_START = "<!-- make openapi writes this table from TRANSITIONS (chalicelib/domain/disputes.py) -->"
TABLE_END = "<!-- /transitions -->"
ACTIONS = "enum: []  # make openapi: every action app.py's routes declare, in their order\n"
EVENTS = "enum: []  # make openapi: TIMELINE_EVENTS (chalicelib/domain/disputes.py), in its order\n"
PATHS = "paths: {}  # make openapi: every path of paths/*.yaml, in the order of app.py's routes\n"
GENERATED = "# Written by `make openapi` from chalicelib/api/schemas.py: edit that file, not this one.\n"
BUNDLED = ("# Bundled by `make openapi` (Redocly CLI) from openapi/: edit those files, not this one.\n"
           "# Request bodies come from chalicelib/api/schemas.py (openapi/components/requests.yaml).\n")
# What only the document says of a component (the validator would act on a `format`).
DOC_ONLY: dict[str, dict[str, Any]] = {"Timestamp": {"format": "date-time"},
                                       "Money": {"example": {"amount": 1999, "currency": "USD"}}}


def request_components() -> dict[str, Any]:
    """The request schemas as OpenAPI 3.0 components: a schema named in ``COMPONENTS`` is referred
    to by name wherever it is used; string enums say ``type: string``; no empty ``required``."""
    sys.path.insert(0, str(ROOT))
    from chalicelib.api.schemas import COMPONENTS

    names = {id(schema): name for name, schema in COMPONENTS.items()}

    def convert(node: dict[str, Any], top: bool = False) -> dict[str, Any]:
        if not top and id(node) in names:
            return {"$ref": f"requests.yaml#/{names[id(node)]}"}
        out: dict[str, Any] = {}
        if "enum" in node and "type" not in node and all(isinstance(v, str) for v in node["enum"]):
            out["type"] = "string"
        for key, value in node.items():
            if key == "properties":
                out[key] = {name: convert(sub) for name, sub in value.items()}
            elif key == "items":
                out[key] = convert(value)
            elif key == "required" and not value:
                continue  # OpenAPI 3.0 forbids an empty list; both mean "nothing required"
            else:
                out[key] = value
        return out

    return {name: {**convert(schema, top=True), **DOC_ONLY.get(name, {})} for name, schema in COMPONENTS.items()}


def requests_yaml() -> str:
    return GENERATED + yaml.safe_dump(request_components(), sort_keys=False, width=110, allow_unicode=True)


def transition_table() -> str:
    """Who may do what, from where: one row per source state, command and state after (its actors
    together), in the order of the statuses and then of ``TRANSITIONS``."""
    sys.path.insert(0, str(ROOT))
    from chalicelib.domain.disputes import TRANSITIONS, Status

    rows = ["| from | action | by | to |", "|---|---|---|---|"]
    for status in Status:
        for (command, source), by in TRANSITIONS.items():
            if source is not status:
                continue
            targets: dict[Status, list[str]] = {}
            for actor, after in by.items():
                targets.setdefault(after, []).append(actor.value)
            rows += [f"| `{status.value}` | `{command.value}` | {', '.join(actors)} | `{after.value}` |"
                     for after, actors in targets.items()]
    return "\n".join(rows)


def rules_md(text: str) -> str:
    """docs/RULES.md with its transition table written from the code."""
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{transition_table()}\n{TABLE_END}{tail}"


def paths_block() -> str:
    """The document's ``paths``: every path of ``openapi/paths/*.yaml``, by ``$ref``, in the order of
    app.py's routes (a route is described once, in its area's file, and listed by no hand)."""
    sys.path.insert(0, str(ROOT))
    from app import app

    where = {path: f.name for f in sorted((SOURCES / "paths").glob("*.yaml"))
             for path in yaml.safe_load(f.read_text(encoding="utf-8"))}
    served = [path for path in app.routes if not path.startswith("/console")]
    if set(served) != set(where):
        raise RuntimeError(f"paths without a route: {sorted(set(where) - set(served))}; "
                           f"routes without a path: {sorted(set(served) - set(where))}")
    pointer = {path: path.replace("~", "~0").replace("/", "~1") for path in served}
    return "paths:\n" + "".join(f"  {path}:\n    $ref: paths/{where[path]}#/{pointer[path]}\n" for path in served)


def actions_enum() -> str:
    """The names ``available_actions`` may hold: every action app.py's routes declare, in their order."""
    sys.path.insert(0, str(ROOT))
    from app import app

    names = [entry.view_name for path, methods in app.routes.items() for entry in methods.values()
             if vars(entry.view_function).get("actions")]
    return "enum:\n" + "".join(f"      - {name}\n" for name in names)


def events_enum() -> str:
    """The names a timeline entry's ``event`` may hold: the domain's ``TIMELINE_EVENTS``."""
    sys.path.insert(0, str(ROOT))
    from chalicelib.domain.disputes import TIMELINE_EVENTS

    return "enum:\n" + "".join(f"      - {name}\n" for name in TIMELINE_EVENTS)


def bundle() -> str:
    """openapi/ bundled by the pinned Redocly CLI (offline), as the top-level openapi.yaml holds it:
    a copy of the sources with what they leave to the code filled in (the paths, in the order of
    app.py's routes; the actions ``available_actions`` may name; the timeline's event names)."""
    root = (SOURCES / "openapi.yaml").read_text(encoding="utf-8")
    orders = (SOURCES / "components" / "orders.yaml").read_text(encoding="utf-8")
    disputes = (SOURCES / "components" / "disputes.yaml").read_text(encoding="utf-8")
    assert root.count(PATHS) == 1, f"openapi/openapi.yaml must hold the line {PATHS!r}"
    assert orders.count(ACTIONS) == 1, f"openapi/components/orders.yaml must hold the line {ACTIONS!r}"
    assert disputes.count(EVENTS) == 1, f"openapi/components/disputes.yaml must hold the line {EVENTS!r}"
    with tempfile.TemporaryDirectory() as tmp:
        sources = Path(tmp) / "openapi"
        shutil.copytree(SOURCES, sources, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        (sources / "openapi.yaml").write_text(root.replace(PATHS, paths_block()), encoding="utf-8")
        (sources / "components" / "orders.yaml").write_text(orders.replace(ACTIONS, actions_enum()), encoding="utf-8")
        (sources / "components" / "disputes.yaml").write_text(disputes.replace(EVENTS, events_enum()), encoding="utf-8")
        out = Path(tmp) / "bundled.yaml"
        run = subprocess.run([str(REDOCLY), "bundle", str(sources / "openapi.yaml"), "-o", str(out)],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"})
        if run.returncode != 0:
            raise RuntimeError(run.stderr[-3000:])
        return BUNDLED + out.read_text(encoding="utf-8")


def main() -> None:
    REQUESTS.write_text(requests_yaml(), encoding="utf-8")
    BUNDLE.write_text(bundle(), encoding="utf-8")
    RULES.write_text(rules_md(RULES.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
