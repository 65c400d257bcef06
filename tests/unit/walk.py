"""The routes that perform an action, as app.py declares them, called as an app calls them; and a
bounded breadth-first walk of the states a dispute reaches by the actions it offers.

The access tests (tests/unit/test_access.py, tests/integration/test_authorization_matrix.py) and
the test of ``available_actions`` draw what they expect from these, the route table and the
domain's ``TRANSITIONS``: a route added to app.py with its ``action=`` is covered with no new row.
Who may give each command is stated by hand once, in tests/unit/test_disputes.py.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from functools import cache
from types import SimpleNamespace
from typing import Any
from unittest import mock

import app as app_module
from chalicelib.api import schemas
from chalicelib.api.routing import Reply, Request, action_for
from chalicelib.api.validation import validate
from chalicelib.domain.catalog import Solution
from chalicelib.domain.disputes import NEGOTIABLE, TRANSITIONS, Actor, Command, Dispute, Status
from chalicelib.domain.identity import Identity
from chalicelib.services import access
from tests.unit.world import BUYER, MODERATOR, SELLER, World, new_world

PEOPLE = {"buyer": BUYER, "seller": SELLER, "moderator": MODERATOR}
ACTOR_OF = {"buyer": Actor.BUYER, "seller": Actor.SELLER, "moderator": Actor.MODERATOR}


# ---- the route table ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    """A route of app.py: its handler (the function under ``Api.route``) and what it declares."""

    name: str
    method: str
    path: str
    schema: dict[str, Any] | None
    keys: tuple[Enum, ...]  # the actions it declares (Api.route(action=...))
    handler: Callable[..., Reply]

    @property
    def commands(self) -> tuple[Command, ...]:
        """The dispute transitions it performs."""
        return tuple(k for k in self.keys if isinstance(k, Command))

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@cache
def routes() -> tuple[Route, ...]:
    """Every route of the app but the console's pages (tests/integration/test_console.py)."""
    out = []
    for path, methods in app_module.app.routes.items():
        if path.startswith("/console"):
            continue
        for method, entry in methods.items():
            view = vars(entry.view_function)
            out.append(Route(entry.view_name, method, path, view["body_schema"], tuple(view["actions"]),
                             view["__wrapped__"]))
    return tuple(out)


def command_routes() -> tuple[Route, ...]:
    """The routes that perform a transition of the dispute (``action=`` a domain Command)."""
    return tuple(r for r in routes() if r.commands)


def route_named(name: str) -> Route:
    return next(r for r in routes() if r.name == name)


def givers(route: Route) -> frozenset[Actor]:
    """The people who may ever give what ``route`` performs: its commands' actors in TRANSITIONS."""
    return frozenset(actor for (command, _), actors in TRANSITIONS.items() if command in route.commands
                     for actor in actors if actor is not Actor.SYSTEM)


def leads_to(route: Route, before: Status, actor: Actor) -> set[Status]:
    """Where the transitions ``route`` declares take a dispute from ``before`` when ``actor`` acts."""
    return {actors[actor] for (command, status), actors in TRANSITIONS.items()
            if command in route.commands and status is before and actor in actors}


# ---- bodies ---------------------------------------------------------------------------------------
# The bodies of a shape whose valid values a schema cannot say (which content types are taken).
SAMPLES: dict[str, dict[str, Any]] = {
    "EvidenceRequest": {"file_name": "photo.jpg", "content_type": "image/jpeg", "size_bytes": 1234},
}
_STRINGS = ("Sample_text_of_a_test", "USD", "2026-11-01T12:00:00Z")


def _sample(schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: _sample(schema["properties"][name]) for name in schema.get("required", [])}
    if kind == "array":
        return [_sample(schema["items"]) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(schema.get("minimum", 0), 1)
    assert kind == "string", schema
    pattern = re.compile(schema.get("pattern", ""))
    return next(s for s in _STRINGS if pattern.search(s) and schema.get("minLength", 0) <= len(s)
                <= schema.get("maxLength", 10**6))


def sample_body(schema: dict[str, Any] | None) -> dict[str, Any]:
    """A valid body of ``schema``: its required fields only, each the first value it allows."""
    if schema is None:
        return {}
    name = next((n for n, s in schemas.COMPONENTS.items() if s is schema), None)
    body = dict(SAMPLES[name]) if name in SAMPLES else _sample(schema)
    validate(body, schema)
    return body


# ---- calling a route over the world -----------------------------------------------------------------
def call(w: World, who: Identity, route: Route, ids: dict[str, str], body: dict[str, Any] | None = None) -> Reply:
    """``route``'s handler, as the edge calls it once the token and the body passed: the typed
    command it builds, the use case it calls, the answer it renders; over the world's fakes."""
    services = SimpleNamespace(services=w.services, clock=w.clock, settings=SimpleNamespace(policy=w.policy))
    request = Request(identity=who, body=sample_body(route.schema) if body is None else body)
    with mock.patch.object(app_module, "container", lambda: services):
        return route.handler(request, **{p: ids[p] for p in route.params})


Key = tuple[str, tuple[tuple[str, str], ...]]  # (the action's route name, the path ids it needs)


def listed(w: World, who: Identity, dispute_id: str | None, order_id: str = "o-1") -> set[Key]:
    """What ``who`` is offered (``available_actions``), by the name of the route that performs each."""
    order = w.state.orders[order_id][0]
    allowed = access.order_actions(who, order, w.clock.now(), w.policy)
    if dispute_id is not None:
        allowed += access.dispute_actions(who, w.state.disputes[dispute_id], w.policy, w.clock.now())
    return {(action_for(key).name, tuple(sorted(ids.items()))) for key, ids in allowed}


def catalogue(w: World, dispute_id: str | None, order_id: str = "o-1") -> dict[Key, dict[str, str]]:
    """Every action that exists on the order and its dispute (each route that declares one, with
    each offer's and each refund's id), as the ids to call its route with."""
    order = w.state.orders[order_id][0]
    dispute = w.state.disputes[dispute_id] if dispute_id is not None else None
    choices = {"offer_id": [o.offer_id for o in dispute.offers] if dispute else [],
               "refund_id": [r.refund_id for r in order.refunds]}
    out: dict[Key, dict[str, str]] = {}
    for route in routes():
        if not route.keys or ("dispute_id" in route.params and dispute is None):
            continue
        ids = {"order_id": order_id, **({"dispute_id": dispute_id} if dispute_id else {})}
        extra = next((p for p in route.params if p in choices), None)
        each: list[dict[str, str]] = [{extra: value} for value in choices[extra]] if extra else [{}]
        for more in each:
            out[(route.name, tuple(sorted(more.items())))] = {**ids, **more}
    return out


# ---- the walk -------------------------------------------------------------------------------------
PHOTO = "photo"  # the buyer's accepted photo: what a buyer needs before escalating (no route's action)


@dataclass(frozen=True)
class Step:
    caller: str  # buyer, seller, moderator
    route: str  # the route's name, or PHOTO
    offer: int | None = None  # the index in ``offers`` of the offer it acts on


# How a dispute opens (NOT_AS_DESCRIBED, from the delivered order): each solution the buyer may ask.
OPENINGS: tuple[tuple[Solution, int | None], ...] = (
    (Solution.REFUND_PARTIAL, 500), (Solution.REFUND_FULL, None), (Solution.RETURN_AND_REFUND, None),
    (Solution.RESEND, None))


@dataclass(frozen=True)
class Node:
    """A state the walk reached: how (an opening, then steps) and what each person is offered there."""

    opening: int
    path: tuple[Step, ...]
    status: Status
    offered: dict[str, frozenset[tuple[str, int | None]]]  # caller -> (route name, offer index)

    def offers(self, caller: str, route: Route) -> bool:
        """Whether ``caller`` is offered ``route`` here."""
        return any(name == route.name for name, _ in self.offered[caller])

    def offer_for(self, route: Route, *callers: str) -> int | None:
        """The index of the offer the first of ``callers`` who is offered ``route`` acts on (None:
        an action on no offer)."""
        caller = next(c for c in callers if self.offers(c, route))
        indices = [i for name, i in self.offered[caller] if name == route.name]
        return None if None in indices else min(i for i in indices if i is not None)

    def __str__(self) -> str:
        steps = ", ".join(f"{s.caller} {s.route}" + (f"[{s.offer}]" if s.offer is not None else "") for s in self.path)
        return f"{OPENINGS[self.opening][0].value}: {steps or 'opened'} -> {self.status.value}"


def ids_of(w: World, ctx: dict[str, str], offer: int | None) -> dict[str, str]:
    d = w.dispute(ctx["dispute_id"])
    return {**ctx, **({"offer_id": d.offers[offer].offer_id} if offer is not None else {})}


@contextmanager
def replay(opening: int, path: tuple[Step, ...]) -> Iterator[tuple[World, dict[str, str]]]:
    """A new world in the state ``path`` reaches (every step must succeed)."""
    w = new_world()
    with w.payments:
        requested, amount = OPENINGS[opening]
        ctx = w.awaiting_seller(requested, amount)
        ctx = {"order_id": ctx["order_id"], "dispute_id": ctx["dispute_id"]}
        for step in path:
            if step.route == PHOTO:
                w.upload_photo(ctx["dispute_id"])
            else:
                call(w, PEOPLE[step.caller], route_named(step.route), ids_of(w, ctx, step.offer))
        yield w, ctx


def _state_key(d: Dispute) -> tuple[Any, ...]:
    if not d.is_open:  # an ended dispute offers nothing: how it ended is all that tells two apart
        return (d.status, d.resolution.outcome if d.resolution else None)
    if d.status not in NEGOTIABLE:  # its offers are all closed: they offer nothing any more
        return (d.status, d.buyer_visual_evidence > 0, d.pending_fault)
    return (d.status, tuple((o.by, o.type, o.status) for o in d.offers), d.buyer_visual_evidence > 0,
            d.pending_fault)


def _offered(w: World, d: Dispute) -> dict[str, frozenset[tuple[str, int | None]]]:
    index = {o.offer_id: i for i, o in enumerate(d.offers)}
    out = {}
    for caller, who in PEOPLE.items():
        out[caller] = frozenset((action_for(key).name, index[ids["offer_id"]] if "offer_id" in ids else None)
                                for key, ids in access.dispute_actions(who, d, w.policy, w.clock.now())
                                if isinstance(key, Command))
    return out


@cache
def walk(depth: int = 4) -> tuple[Node, ...]:
    """Every state (status, offers, the buyer's photo, a pending fault) the dispute reaches from each
    opening within ``depth`` steps, by the transitions its persons are offered and the buyer's photo;
    shallowest first."""
    nodes: list[Node] = []
    seen: set[tuple[Any, ...]] = set()
    queue: deque[tuple[int, tuple[Step, ...]]] = deque((i, ()) for i in range(len(OPENINGS)))
    while queue:
        opening, path = queue.popleft()
        with replay(opening, path) as (w, ctx):
            d = w.dispute(ctx["dispute_id"])
            if _state_key(d) in seen:
                continue
            seen.add(_state_key(d))
            node = Node(opening, path, d.status, _offered(w, d))
            nodes.append(node)
            if len(path) >= depth:
                continue
            steps = [Step(caller, name, offer) for caller, offered in node.offered.items()
                     for name, offer in sorted(offered, key=str)]
            if d.is_open and d.buyer_visual_evidence == 0:
                steps.append(Step("buyer", PHOTO))
            queue.extend((opening, (*path, step)) for step in steps)
    return tuple(nodes)


def first_node(route: Route, callers: tuple[str, ...] = tuple(PEOPLE)) -> Node:
    """The shallowest state in which one of ``callers`` is offered ``route``."""
    for node in walk():
        if any(node.offers(c, route) for c in callers):
            return node
    raise AssertionError(f"no state within the walk offers {route} to {', '.join(callers)}: "
                         "add an opening to tests/unit/walk.py OPENINGS")
