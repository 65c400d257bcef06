"""The walkthrough's curl blocks (docs/WALKTHROUGH.md) as steps, and what each step's shown answer promises: pure functions
(tests/functional/test_readme.py plays the steps; tests/unit/test_readme_session.py checks this
parsing on the walkthrough itself).

An answer is shown as comment lines after its step: `# 201 {...}`, continued by lines indented
`#      ...`. Its literals (strings, numbers, booleans, null, arrays of those) are promised where
they stand: each as (the keys leading to it from the top, arrays passed through, its value), so
`{"escrow":{"refunded":{"amount":800,...}}}` promises 800 at escrow.refunded.amount, not any
`amount` of 800."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

SESSION = "## A whole dispute with curl"
SANDBOX = "## Sandbox"
# Values the README shows that differ on every run.
VARYING_KEYS = {"order_id", "dispute_id", "offer_id", "evidence_id", "refund_id", "message_id", "sha256", "path",
                "policy", "key", "url", "download_url", "thumbnail_url", "x-amz-signature", "size_bytes"}
STATUS_MARK = "__http"  # what the test's curl writes after each answer: `__http 201`
Literal = tuple[tuple[str, ...], Any]  # (keys from the top, value)

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\.\.\.|-?\d+(?:\.\d+)?(?![\w.])|true\b|false\b|null\b|[{}\[\]:,]|\S')


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)  # the answer lines the README shows after it

    def status(self) -> int | None:
        first = self.shown[0] if self.shown else ""
        m = re.match(r"#\s+(\d{3})\b", first)
        return int(m.group(1)) if m else None

    def expected(self) -> list[Literal]:
        """The literals of the shown answer that are the same on every run."""
        text = " ".join(line.lstrip("# ").strip() for line in self.shown)
        return [lit for lit in literals(text) if _steady(lit[0][-1], lit[1])]


def _steady(key: str, value: Any) -> bool:
    if key in VARYING_KEYS:
        return False
    if isinstance(value, str):
        return "..." not in value and not re.match(r"\d{4}-\d\d-\d\dT", value)
    return True


def literals(text: str) -> list[Literal]:
    """Every scalar or scalar-array value written after a `"key":` in ``text``, with the keys that
    lead to it (an array adds none). Elisions (`...`) and prose around the JSON are skipped."""
    tokens = _TOKEN.findall(text)
    out: list[Literal] = []
    stack: list[tuple[str, ...]] = []  # the path of each open object or array
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith('"') and i + 2 < len(tokens) and tokens[i + 1] == ":":
            key, value_tok = json.loads(tok), tokens[i + 2]
            path = (*(stack[-1] if stack else ()), key)
            if value_tok in ("{", "["):
                if value_tok == "[":
                    array, end = _scalar_array(tokens, i + 2)
                    if array is not None:
                        out.append((path, array))
                        i = end
                        continue
                stack.append(path)
                i += 3
                continue
            scalar = _scalar(value_tok)
            if scalar is not _NOT_SCALAR:
                out.append((path, scalar))
            i += 3
            continue
        if tok in ("{", "["):
            stack.append(stack[-1] if stack else ())  # the top, or an element: the array's path
        elif tok in ("}", "]") and stack:
            stack.pop()
        i += 1
    return out


_NOT_SCALAR = object()


def _scalar(tok: str) -> Any:
    if tok == "..." or tok in "{}[]:,":
        return _NOT_SCALAR
    if tok.startswith('"') or tok in ("true", "false", "null") or re.fullmatch(r"-?\d+(?:\.\d+)?", tok):
        return json.loads(tok)
    return _NOT_SCALAR


def _scalar_array(tokens: list[str], start: int) -> tuple[list[Any] | None, int]:
    """The array opening at ``tokens[start]`` if it holds scalars only, and the index after it."""
    values: list[Any] = []
    i = start + 1
    while i < len(tokens):
        tok = tokens[i]
        if tok == "]":
            return values, i + 1
        if tok != ",":
            value = _scalar(tok)
            if value is _NOT_SCALAR:
                return None, start
            values.append(value)
        i += 1
    return None, start


def blocks(readme: str) -> dict[str, str]:
    """The first `sh` block of the session and of the sandbox sections."""
    out = {}
    for name, heading in (("session", SESSION), ("sandbox", SANDBOX)):
        out[name] = readme[readme.index(heading):].split("```sh\n", 1)[1].split("```", 1)[0]
    return out


def steps(block: str) -> list[Step]:
    """A block's steps: runs of command lines, each with the answer shown after it."""
    out: list[Step] = []
    current: list[str] = []
    showing = False
    for line in block.splitlines():
        if line.startswith("#"):
            if current:
                out.append(Step("\n".join(current)))
                current = []
            # An answer starts with its status; its continuation lines are indented.
            if re.match(r"#\s+\d{3}\b", line) or (showing and line.startswith("#  ")):
                out[-1].shown.append(line)
                showing = True
            else:
                showing = False
        elif line.strip():
            current.append(line)
            showing = False
        elif current:
            out.append(Step("\n".join(current)))
            current = []
    if current:
        out.append(Step("\n".join(current)))
    return out


def answers(output: str) -> list[Any]:
    """Every JSON object printed in a step's output."""
    found: list[Any] = []
    decoder = json.JSONDecoder()
    i = output.find("{")
    while i != -1:
        try:
            value, end = decoder.raw_decode(output, i)
        except json.JSONDecodeError:
            i = output.find("{", i + 1)
            continue
        found.append(value)
        i = output.find("{", end)
    return found


def held(value: Any, path: tuple[str, ...] = ()) -> set[str]:
    """Every (path, value) in ``value``, as ``literals`` names them (JSON-encoded, to compare lists)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(_key(((*path, k), v)))
            out |= held(v, (*path, k))
    elif isinstance(value, list):
        for v in value:
            out |= held(v, path)
    return out


def _key(literal: Literal) -> str:
    return json.dumps([list(literal[0]), literal[1]], sort_keys=True)


def missing(expected: list[Literal], output: str) -> list[Literal]:
    """The promised literals no answer in ``output`` holds."""
    there: set[str] = set()
    for answer in answers(output):
        there |= held(answer)
    return [lit for lit in expected if _key(lit) not in there]


def statuses(output: str) -> list[int]:
    """The HTTP statuses the test's curl wrote, in order."""
    return [int(m) for m in re.findall(rf"^{STATUS_MARK} (\d{{3}})$", output, flags=re.M)]
