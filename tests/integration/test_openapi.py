"""openapi.yaml stays true to the app: the bundle of openapi/ with the request bodies written from
chalicelib/api/schemas.py (make openapi), the statuses and query parameters the handlers use, and a well-formed
OpenAPI 3.0 document that a strict linter accepts, with its error codes and event names
enumerated. (Every response the tests receive is checked against it: tests/contract.py.)"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import app
from chalicelib.api import schemas, views
from chalicelib.domain.catalog import Reason
from chalicelib.domain.disputes import TIMELINE_EVENTS
from chalicelib.domain.errors import CODES, INTERNAL_CODES
from chalicelib.domain.evidence import (
    COUNTED,
    FINAL,
    LIMITS,
    MAX_FILES_PER_PARTY,
    MIB,
    UPLOAD_WINDOW,
    Evidence,
    checklist,
)
from chalicelib.domain.timefmt import parse
from chalicelib.inspection import REASONS as REJECTION_REASONS
from chalicelib.services.evidence import LINK_SECONDS

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
_BUILD = importlib.util.spec_from_file_location("openapi_build", SPEC_PATH.parent / "openapi" / "build.py")
assert _BUILD is not None and _BUILD.loader is not None
build = importlib.util.module_from_spec(_BUILD)
_BUILD.loader.exec_module(build)  # make openapi's own code: what it writes is what these tests expect
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Routes without a bearer token: health, and the payment provider's webhook, which is verified by
# its signature instead (and is idempotent by what it says, not by an Idempotency-Key).
PUBLIC = {("/health", "GET"), ("/payments/webhook", "POST")}

# ---- helpers ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict), "openapi.yaml is not a mapping"
    return doc


def follow(doc: dict[str, Any], ref: str) -> Any:
    """The node a local JSON pointer ``#/a/b`` names; KeyError when it names nothing."""
    assert ref.startswith("#/"), f"only local $refs are used here: {ref}"
    node: Any = doc
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise KeyError(ref)
        node = node[part]
    return node


def resolve(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = follow(doc, node["$ref"])
    return node


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{where}/{i}")


def spec_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in doc["paths"].items() for method in item
            if method in HTTP_METHODS}


CONSOLE = "/console"  # the console's HTML pages: listed under x-console-pages, not under paths


def is_console(path: str) -> bool:
    return path == CONSOLE or path.startswith(CONSOLE + "/")


def app_routes() -> set[tuple[str, str]]:
    """The JSON API's routes (the console's pages are checked against x-console-pages)."""
    return {(path, method) for path, methods in app.routes.items() for method in methods if not is_console(path)}


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method.upper(), op, item


def parameters(doc: dict[str, Any], item: dict[str, Any], op: dict[str, Any]) -> list[dict[str, Any]]:
    """Path-level then operation-level parameters, resolved."""
    return [resolve(doc, p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]


def handler(path: str, method: str) -> Callable[..., Any]:
    """The function written in app.py (Api.route wraps it with functools.wraps)."""
    view = app.routes[path][method].view_function
    return getattr(view, "__wrapped__", view)


def handler_source(path: str, method: str) -> str:
    src = inspect.getsource(handler(path, method))
    return src[src.index("def "):]  # without the decorator


# ---- the routes -----------------------------------------------------------------------------------
def test_the_document_declares_exactly_the_routes_of_the_app(spec: dict[str, Any]) -> None:
    documented, served = spec_routes(spec), app_routes()
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not documented"


def test_the_console_pages_listed_in_the_document_are_exactly_the_apps(spec: dict[str, Any]) -> None:
    listed = {(page["path"], page["method"]) for page in spec["x-console-pages"]["pages"]}
    served = {(path, method) for path, methods in app.routes.items() for method in methods if is_console(path)}
    assert listed == served
    assert not any(is_console(path) for path in spec["paths"]), "console pages are not JSON routes"


def body_routes() -> list[tuple[str, str]]:
    """The routes that validate a request body (Api.route's schema)."""
    return sorted((path, method) for path, method in app_routes()
                  if vars(app.routes[path][method].view_function).get("body_schema") is not None)


def test_every_signed_in_post_and_put_validates_its_body() -> None:
    writes = {(path, method) for path, method in app_routes() if method in ("POST", "PUT") and (path, method) not in PUBLIC}
    assert writes == set(body_routes())


# ---- request bodies: one source (chalicelib/api/schemas.py), written into the document -------------
@pytest.mark.parametrize("path,method", body_routes())
def test_each_route_documents_the_request_body_it_validates_with(spec: dict[str, Any], path: str, method: str) -> None:
    body = resolve(spec, spec["paths"][path][method.lower()]["requestBody"])
    schema = vars(app.routes[path][method].view_function)["body_schema"]
    name = next(name for name, component in schemas.COMPONENTS.items() if component is schema)
    assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{name}"}
    assert body.get("required") is True or not schema.get("required")


def test_the_request_components_are_the_ones_make_openapi_writes_from_the_code() -> None:
    assert build.REQUESTS.read_text(encoding="utf-8") == build.requests_yaml(), "run make openapi"


def test_the_committed_openapi_yaml_is_the_bundle_of_its_sources() -> None:
    """openapi.yaml is what the pinned Redocly CLI bundles from openapi/ (clients and tests read it)."""
    assert SPEC_PATH.read_text(encoding="utf-8") == build.bundle(), "run make openapi"


def test_the_bundled_request_components_are_the_validators_schemas(spec: dict[str, Any]) -> None:
    """Followed through the bundle, each component constrains exactly as the dict the edge validates with."""
    def unref(node: Any) -> Any:
        node = resolve(spec, node)
        if isinstance(node, dict):
            return {k: unref(v) for k, v in node.items()
                    if not (k == "description" and isinstance(v, str)) and k not in ("example", "format")}
        return [unref(v) for v in node] if isinstance(node, list) else node

    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: plain(v) for k, v in node.items()
                   if not (k == "description" and isinstance(v, str)) and not (k == "required" and not v)}
            if "enum" in out and "type" not in out:
                out["type"] = "string"
            return out
        return [plain(v) for v in node] if isinstance(node, list) else node

    for name, schema in schemas.COMPONENTS.items():
        assert unref(spec["components"]["schemas"][name]) == plain(schema), name


# ---- what the handlers do -------------------------------------------------------------------------
@pytest.mark.parametrize("path,method", sorted(app_routes()))
def test_success_statuses_are_the_ones_the_handler_returns(spec: dict[str, Any], path: str, method: str) -> None:
    returned = set(re.findall(r"\b(2\d\d)\b", handler_source(path, method)))
    assert returned, f"{method} {path}: found no literal 2xx status in the handler; update this test"
    documented = {str(code) for code in spec["paths"][path][method.lower()]["responses"] if str(code)[0] == "2"}
    assert documented == returned


@pytest.mark.parametrize("path,method", sorted(app_routes()))
def test_query_parameters_are_the_ones_the_handler_reads(spec: dict[str, Any], path: str, method: str) -> None:
    src = handler_source(path, method)
    read = set(re.findall(r"req\.(limit|cursor)\(\)", src))
    if re.search(r"\bpage\(req\)", src):  # app.page() reads both
        read |= {"limit", "cursor"}
    if "req.role()" in src:
        read.add("role")
    read |= set(re.findall(r"req\.(?:choice|flag)\(\s*[\"']([A-Za-z_]+)[\"']", src))
    item = spec["paths"][path]
    declared = {p["name"] for p in parameters(spec, item, item[method.lower()]) if p["in"] == "query"}
    assert declared == read
    # ... and the ones its route takes: any other is refused (400 INVALID_QUERY) at the edge.
    view: Any = app.routes[path][method].view_function
    taken = view.query_parameters  # set by Api.route
    assert set(taken) == declared and len(taken) == len(declared)


def test_every_post_takes_an_idempotency_key(spec: dict[str, Any]) -> None:
    missing = [path for path, method, op, item in operations(spec) if method == "POST" and (path, method) not in PUBLIC
               and not any(p["in"] == "header" and p["name"].lower() == "idempotency-key"
                           for p in parameters(spec, item, op))]
    assert missing == []


def test_the_idempotency_key_header_states_the_rule_the_app_enforces(spec: dict[str, Any]) -> None:
    import re

    from chalicelib.api.routing import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY

    schema = spec["components"]["parameters"]["IdempotencyKey"]["schema"]
    assert (schema["pattern"], schema["maxLength"], schema["minLength"]) == (IDEMPOTENCY_KEY_PATTERN,
                                                                              MAX_IDEMPOTENCY_KEY, 1)
    documented = re.compile(schema["pattern"])
    for key, valid in (("0ded5b2e-4a7f-4b1e-9c3d-3f1e2a6b7c8d", True), ("a b~!", True), ("x\ty", False),
                       ("caf\u00e9", False), ("\u200b", False), ("k\x7f", False)):
        assert bool(documented.match(key)) is valid, key


def test_health_is_public_and_every_other_route_needs_a_bearer_jwt(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"].lower(), scheme.get("bearerFormat")) == ("http", "bearer", "JWT")
    assert spec["security"] == [{"bearerAuth": []}]
    overridden = {(path, method): op["security"] for path, method, op, _ in operations(spec) if "security" in op}
    assert overridden == dict.fromkeys(PUBLIC, [])


def test_errors_use_the_error_body_and_signed_in_routes_answer_401(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert sorted(error["properties"]["error"]["required"]) == ["code", "details", "message"]
    for path, method, op, _ in operations(spec):
        responses = op["responses"]
        if (path, method) not in PUBLIC:
            assert "401" in responses, f"{method} {path} does not document 401"
        for code, response in responses.items():
            if str(code)[0] in "45":
                schema = resolve(spec, response)["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {code}"


# ---- evidence: what the app tells phones -------------------------------------------------------
EVIDENCE_PATH = "/disputes/{dispute_id}/evidence"


def codes(text: str) -> set[str]:
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))


def a_slot() -> Evidence:
    return Evidence.slot("d-1", "buyer", "b-1", "photo.jpg", "image/jpeg", 10, parse("2026-11-01T12:00:00Z"))


def test_evidence_responses_have_the_fields_views_py_renders(spec: dict[str, Any]) -> None:
    schemas_ = spec["components"]["schemas"]
    # the evidence use cases add the two links to what views.evidence renders
    listed = views.evidence(a_slot(), a_slot().created_at, {"download_url": None, "thumbnail_url": None})
    assert sorted(schemas_["Evidence"]["required"]) == sorted(schemas_["Evidence"]["properties"]) == sorted(listed)
    slot = views.upload_slot(a_slot(), {"url": "https://s3.example", "fields": {"key": "k"}})
    assert sorted(schemas_["UploadSlot"]["required"]) == sorted(slot)
    assert sorted(schemas_["UploadForm"]["required"]) == sorted(slot["upload"])
    assert schemas_["UploadSlot"]["properties"]["status"]["enum"] == [slot["status"]]
    shown = checklist(Reason.NOT_AS_DESCRIBED, 0)
    assert sorted(schemas_["EvidenceChecklist"]["required"]) == sorted(schemas_["EvidenceChecklist"]["properties"])
    assert sorted(schemas_["EvidenceChecklist"]["required"]) == sorted(shown)


def test_evidence_statuses_and_rejection_reasons_are_the_domains(spec: dict[str, Any]) -> None:
    schemas_ = spec["components"]["schemas"]
    assert sorted(schemas_["EvidenceStatus"]["enum"]) == sorted(FINAL | COUNTED)
    reason = schemas_["Evidence"]["properties"]["rejection_reason"]
    assert reason.get("nullable") is True
    assert codes(reason["description"]) == set(REJECTION_REASONS), "list exactly inspection.REASONS"


def test_the_upload_route_states_the_limits_the_domain_applies(spec: dict[str, Any]) -> None:
    post = spec["paths"][EVIDENCE_PATH]["post"]
    rows = re.findall(r"\|\s*`([a-z]+/[a-z0-9.+-]+)`\s*\|\s*(\d+) MiB", post["description"])
    table = {ct: int(mib) for ct, mib in rows}
    assert table == {ct: limit // MIB for ct, limit in LIMITS.items()}
    assert f"At most {MAX_FILES_PER_PARTY} files per party" in post["description"]
    assert f"valid for {int(UPLOAD_WINDOW.total_seconds()) // 60} minutes" in post["description"]
    assert "multipart/form-data" in post["description"] and "`file`" in post["description"]
    declared = spec["components"]["schemas"]["EvidenceRequest"]["properties"]["content_type"]["description"]
    assert set(re.findall(r"`([a-z]+/[a-z0-9.+-]+)`", declared)) == set(LIMITS)
    assert {"UNSUPPORTED_CONTENT_TYPE", "FILE_TOO_LARGE", "EMPTY_FILE", "EVIDENCE_LIMIT_REACHED"} <= \
        codes(post["responses"]["422"]["description"])
    assert "DISPUTE_CLOSED" in codes(post["responses"]["409"]["description"])
    listing = spec["paths"][EVIDENCE_PATH]["get"]["description"]
    assert f"valid for {LINK_SECONDS // 60} minutes" in listing


def test_escalate_documents_the_evidence_the_buyer_needs(spec: dict[str, Any]) -> None:
    refusals = spec["paths"]["/disputes/{dispute_id}/escalate"]["post"]["responses"]["422"]
    assert codes(refusals["description"]) == {"EVIDENCE_REQUIRED"}
    assert "`missing`" in refusals["description"]


# ---- a well-formed document -----------------------------------------------------------------------
def test_the_document_is_openapi_3_0(spec: dict[str, Any]) -> None:
    assert str(spec["openapi"]).startswith("3.0")
    assert spec["info"]["title"] and spec["info"]["version"]
    for path, method, op, _ in operations(spec):
        assert path.startswith("/")
        assert op.get("responses"), f"{method} {path} has no responses"
        for code in op["responses"]:
            assert re.fullmatch(r"[1-5](\d\d|XX)|default", str(code)), f"{method} {path}: bad status {code}"
    empty_required = [where for where, node in walk(spec)
                      if isinstance(node, dict) and node.get("required") == []]
    assert empty_required == [], "OpenAPI 3.0 wants `required` left out rather than empty"
    operation_ids = [op["operationId"] for _, _, op, _ in operations(spec)]
    assert len(operation_ids) == len(set(operation_ids)), "operationId values repeat"


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    broken = []
    for where, node in walk(spec):
        if isinstance(node, dict) and "$ref" in node:
            try:
                follow(spec, node["$ref"])
            except KeyError:
                broken.append(f"{where}: {node['$ref']}")
    assert broken == []


def test_every_path_parameter_is_declared_and_required(spec: dict[str, Any]) -> None:
    for path, method, op, item in operations(spec):
        templated = set(re.findall(r"{([^}]+)}", path))
        declared = [p for p in parameters(spec, item, op) if p["in"] == "path"]
        assert {p["name"] for p in declared} == templated, f"{method} {path}"
        assert all(p.get("required") is True for p in declared), f"{method} {path}: path parameters are required"


# ---- strict tooling: what client generators and the apps' contract tests read ----------------------
def test_a_strict_linter_finds_no_error_in_the_document() -> None:
    """redocly (pinned, installed by the Makefile) in its recommended ruleset: e.g. a `nullable`
    without a `type` beside it is an error there and a rejected null in strict validators."""
    cli = Path(sys.prefix) / "node" / "node_modules" / ".bin" / "redocly"
    assert cli.exists(), "make installs the pinned linter next to the virtualenv's packages"
    run = subprocess.run([str(cli), "lint", str(SPEC_PATH), "--format=json"], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"})
    report = json.loads(run.stdout)
    errors = [f"{p['ruleId']}: {p['message']} at {p['location'][0]['pointer']}"
              for p in report["problems"] if p["severity"] == "error"]
    assert errors == []
    assert report["totals"]["errors"] == 0 and run.returncode == 0


def test_error_codes_are_enumerated_exactly_as_the_service_sends_them(spec: dict[str, Any]) -> None:
    enum = spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    assert enum == list(CODES)
    # Refusals name their codes in prose, beside statuses and other values of the document's enums.
    vocabulary = {v for _, node in walk(spec) if isinstance(node, dict) and node is not None
                  for v in node.get("enum") or () if isinstance(v, str)}
    for path, method, op, _ in operations(spec):
        for status, response in op["responses"].items():
            response = follow(spec, response["$ref"]) if "$ref" in response else response
            named = codes(response.get("description", ""))
            assert named <= vocabulary, f"{method} {path} {status} names {named - vocabulary}"
            if re.fullmatch(r"4\d\d", str(status)) and str(status) != "401":
                assert named & set(CODES), f"{method} {path} {status} names none of its codes"


ERROR_CLASSES = {"DomainError", "InvalidInput", "Unauthenticated", "Forbidden", "NotFound", "Conflict",
                 "RuleViolation", "ConcurrentModification"}


def raise_sites() -> list[tuple[str, str | None, str]]:
    """(code, error class or None for error_body, file:line) for every code literal the code sends
    or raises: error classes built with a code, error_body calls, and a class's default code where
    that class is built without one."""
    root = SPEC_PATH.parent
    found: list[tuple[str, str | None, str]] = []
    defaults: dict[str, tuple[str, str]] = {}
    codeless: set[str] = set()
    for path in [root / "app.py", *sorted((root / "chalicelib").rglob("*.py")), *sorted((root / "local").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name in ERROR_CLASSES:
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and [getattr(t, "id", None) for t in stmt.targets] == ["code"]
                            and isinstance(stmt.value, ast.Constant) and stmt.value.value):
                        defaults[node.name] = (str(stmt.value.value), f"{path.name}:{stmt.lineno}")
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in ERROR_CLASSES and name != "error_body":
                continue
            given = [k.value for k in node.keywords if k.arg == "code"]
            position = 0 if name == "error_body" else 1
            given += node.args[position:position + 1] if not given else []
            if not given:
                codeless.add(name)
            for value in given:
                for leaf in ast.walk(value):
                    if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str) and leaf.value.isupper():
                        found.append((leaf.value, None if name == "error_body" else name, f"{path.name}:{node.lineno}"))
    found += [(code, name, where) for name, (code, where) in defaults.items() if name in codeless]
    return found


def caught_codes() -> set[str]:
    """Codes a caller inside the service singles out (``exc.code == "NOT_DUE"``): raised to be caught there."""
    root = SPEC_PATH.parent
    caught = set()
    for path in sorted((root / "chalicelib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Compare) and getattr(node.left, "attr", None) == "code"
                    and isinstance(node.ops[0], ast.Eq) and isinstance(node.comparators[0], ast.Constant)):
                caught.add(node.comparators[0].value)
    return {code for code in caught if isinstance(code, str) and code.isupper()}  # not a provider's own codes


def test_every_code_written_in_the_code_is_in_the_catalog() -> None:
    """Codes are literals at the raise sites; each must be one of CODES, or one the domain keeps to
    itself (INTERNAL_CODES): a missing one would be a 500 the first time it is raised."""
    found = {code: where for code, _, where in raise_sites()}
    assert len(found) > 40
    assert {code: where for code, where in found.items() if code not in CODES and code not in INTERNAL_CODES} == {}


def test_every_code_in_the_catalog_is_one_the_service_sends() -> None:
    """The reverse direction: a code in the catalog (and so in the document's enum) that nothing
    sends misleads every client that branches on it."""
    from chalicelib.api.routing import CHALICE_ERRORS
    from infra.template.api import GATEWAY_RESPONSES

    sent = {code for code, _, _ in raise_sites()} - caught_codes() | set(CHALICE_ERRORS.values())
    sent |= {code for _, code, _ in GATEWAY_RESPONSES.values()}
    assert set(CODES) - sent == set()
    assert caught_codes() <= set(INTERNAL_CODES) and set(INTERNAL_CODES) & set(CODES) == set()


def test_each_code_is_listed_under_the_status_it_is_sent_with() -> None:
    """errors.py groups CODES under comments naming their statuses (``# 409: ...``); a code raised
    with an error class must sit under that class's status."""
    from chalicelib.api.routing import STATUS

    section: set[int] = set()
    listed: dict[str, set[int]] = {}
    source = (SPEC_PATH.parent / "chalicelib" / "domain" / "errors.py").read_text()
    body = source[source.index("CODES: dict[str, str] = {"):source.index("\n}\n")]
    for line in body.splitlines()[1:]:
        if line.strip().startswith("#"):
            section = {int(n) for n in re.findall(r"\b([1-5]\d\d)\b", line)}
            section |= set(range(500, 600)) if "5xx" in line else set()
        elif match := re.match(r'\s+"([A-Z_]+)":', line):
            listed[match.group(1)] = section
    assert set(listed) == set(CODES)
    statuses = dict(STATUS)
    from chalicelib.domain import errors

    wrong = []
    for code, name, where in raise_sites():
        if name is None or code not in CODES:
            continue
        cls = getattr(errors, name)
        status = next((s for c, s in statuses.items() if issubclass(cls, c)), None)
        if status is not None and status not in listed[code]:
            wrong.append(f"{code} is sent as {status} ({where}) but listed under {sorted(listed[code])}")
    assert wrong == []


def test_timeline_events_are_enumerated_as_the_domain_names_them(spec: dict[str, Any]) -> None:
    assert spec["components"]["schemas"]["TimelineEntry"]["properties"]["event"]["enum"] == list(TIMELINE_EVENTS)
