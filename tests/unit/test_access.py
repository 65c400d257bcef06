"""Who may do what, at the service level: every use case a route calls x every kind of signed-in
caller, over the in-memory fakes (the API's rules, services/access.py and the domain's actors).

- a caller allowed to act succeeds, from a state in which the action is possible;
- a party or a moderator asking for what is not theirs gets Forbidden (NOT_YOUR_ACTION), and so
  does everyone outside the group of a group-only use case (registering orders, the moderation queue);
- a caller who is no party and no moderator (strangers, and services, which are no party) gets
  NotFound, exactly as for ids nobody has;
- lists answer the caller's own items only;
- a refused command changes nothing: not the stored state, not the outbox, not the outside world.

The routes that perform a transition of the dispute (``action=`` a domain Command) have no row:
their cells are drawn from the route table and the domain's TRANSITIONS (tests/unit/walk.py), in
the shallowest state the dispute reaches in which the action is offered, so a route added later is
covered as it is declared. Who may give each command is stated by hand in tests/unit/test_disputes.py.

What only the HTTP edge decides (no token -> 401, the error body) stays in
tests/integration/test_authorization_matrix.py.
"""
from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.api import requests as parse
from chalicelib.domain.catalog import Decision, Reason, Solution
from chalicelib.domain.disputes import QueueFilter, Status
from chalicelib.domain.errors import DomainError, Forbidden, NotFound
from chalicelib.domain.evidence import ACCEPTED, PENDING_UPLOAD
from chalicelib.domain.identity import Identity
from chalicelib.domain.money import Money
from chalicelib.domain.orders import EscrowStatus, OrderStatus, ScanStatus
from chalicelib.services import Services
from chalicelib.services import commands as c
from chalicelib.services.disputes import (
    AcceptOffer,
    Cancel,
    ClaimCase,
    Decide,
    OpenDispute,
    ReleaseCase,
)
from tests.support import T0, order_body
from tests.unit.walk import ACTOR_OF, PEOPLE, Route, call, command_routes, first_node, givers, ids_of, leads_to, replay
from tests.unit.world import BUYER, MODERATOR, SELLER, SERVICE, STRANGER, Ctx, World

ADMIN = Identity("admin-1", frozenset({"moderation-admins"}))
# A platform service's token (client credentials) whose `sub` happens to be a party's id: it is a
# service all the same, answered exactly as the service is (before: it acted as that party).
SERVICE_AS_BUYER = Identity(BUYER.sub, frozenset(), scopes=SERVICE.scopes)
SERVICE_AS_SELLER = Identity(SELLER.sub, frozenset(), scopes=SERVICE.scopes)
CALLERS: dict[str, Identity] = {"buyer": BUYER, "seller": SELLER, "stranger": STRANGER, "moderator": MODERATOR,
                                "service": SERVICE, "service_as_buyer": SERVICE_AS_BUYER,
                                "service_as_seller": SERVICE_AS_SELLER, "admin": ADMIN}
PARTIES = ("buyer", "seller")
NON_PARTIES = ("stranger", "moderator", "service", "service_as_buyer", "service_as_seller", "admin")
IMPOSTORS = ("service_as_buyer", "service_as_seller")
PAGE = c.PageRequest(limit=100, cursor=None)
ALLOWED = None  # the outcome of a cell whose caller may act
Outcome = type[DomainError] | None


def only(*allowed: str) -> dict[str, Outcome]:
    """An action on an order or dispute: the allowed callers succeed, other parties and moderators
    are refused (403), strangers and services (no party) are told it does not exist (404)."""
    row: dict[str, Outcome] = {"buyer": Forbidden, "seller": Forbidden, "moderator": Forbidden,
                               "stranger": NotFound, "service": NotFound, "admin": NotFound}
    row.update(dict.fromkeys(allowed, ALLOWED))
    return row


def group_only(*allowed: str) -> dict[str, Outcome]:
    """A use case on no particular resource, for some groups: everyone else is refused (403)."""
    return {caller: ALLOWED if caller in allowed else Forbidden for caller in CALLERS}


def readers(*allowed: str) -> dict[str, Outcome]:
    """Figures about a person (standing, signals): whoever may not read them is told they do not exist."""
    return {caller: ALLOWED if caller in allowed else NotFound for caller in CALLERS}


RULE = {"description": "Escalate counterfeits at once", "mode": "DRY_RUN", "priority": 5,
        "when": {"reasons": ["COUNTERFEIT"]}, "then": "ESCALATE"}


def a_rule(world: World) -> Ctx:
    world.services.moderation.save_rule(ADMIN, parse.save_rule(RULE, "counterfeits"))
    return {"rule_id": "counterfeits"}


def a_defect(world: World) -> Ctx:
    """An order whose dispute a moderator decided against the seller: a defect of theirs."""
    ctx = world.escalated()
    world.services.disputes.decide(MODERATOR, Decide(ctx["dispute_id"], None, Decision.REFUND_FULL, None,
                                                       "The photos show a different item", None))
    return ctx


EVERYONE: dict[str, Outcome] = dict.fromkeys(CALLERS, ALLOWED)
READ_BY_PARTIES = only("buyer", "seller", "moderator")


def role_of(who: Identity) -> str:
    return "seller" if who == SELLER else "buyer"


def ids(page: Any) -> list[str]:
    items, _ = page
    return [getattr(i, "dispute_id", None) or i.order_id for i in items]


def nothing(world: World) -> Ctx:
    return {}


def claimed(world: World) -> Ctx:
    """An escalated case the moderator holds."""
    ctx = world.escalated()
    world.services.disputes.claim(MODERATOR, ClaimCase(ctx["dispute_id"]))
    return ctx


@dataclass(frozen=True)
class Row:
    route: str  # "METHOD /path", as the app names it
    use_case: str  # what the route's handler calls on services(), e.g. "orders.ship"
    setup: Callable[..., Ctx]  # setup(world), or setup(world, caller) with per_caller_setup
    act: Callable[[Services, Identity, Ctx], Any]
    outcomes: dict[str, Outcome]
    done: Callable[[Any, Ctx, str], bool]  # what success looks like
    per_caller_setup: bool = False

    def given(self, world: World, caller: str) -> Ctx:
        return self.setup(world, caller) if self.per_caller_setup else self.setup(world)

    def __str__(self) -> str:
        return self.route


MATRIX: tuple[Row, ...] = (
    Row("POST /orders", "orders.register", nothing,
        lambda s, who, ctx: s.orders.register(who, parse.register_order(order_body())),
        group_only("service"), lambda r, ctx, caller: r[1] is True and r[0].order_id == "o-1"),
    Row("GET /orders", "orders.list", lambda w: w.awaiting_seller(),
        lambda s, who, ctx: s.orders.list(who, role_of(who), PAGE), EVERYONE,
        lambda r, ctx, caller: ids(r) == ([ctx["order_id"]] if caller in PARTIES else [])),
    Row("GET /orders/{order_id}", "orders.get", lambda w: w.awaiting_seller(),
        lambda s, who, ctx: s.orders.get(who, ctx["order_id"]), READ_BY_PARTIES,
        lambda r, ctx, caller: r.order_id == ctx["order_id"]),
    Row("POST /orders/{order_id}/shipment", "orders.ship", lambda w: w.registered(),
        lambda s, who, ctx: s.orders.ship(who, c.ShipOrder(ctx["order_id"], "CP", "CN123")), only("seller"),
        lambda r, ctx, caller: r.status is OrderStatus.SHIPPED),
    Row("POST /orders/{order_id}/tracking-events", "orders.record_scan", lambda w: w.shipped(),
        lambda s, who, ctx: s.orders.record_scan(who, c.RecordScan(ctx["order_id"], ScanStatus.DELIVERED, T0)), only("service"),
        lambda r, ctx, caller: r.status is OrderStatus.DELIVERED),
    Row("POST /orders/{order_id}/confirm-receipt", "orders.confirm_receipt", lambda w: w.shipped(),
        lambda s, who, ctx: s.orders.confirm_receipt(who, c.ConfirmReceipt(ctx["order_id"])), only("buyer"),
        lambda r, ctx, caller: r.escrow.status is EscrowStatus.RELEASED),
    Row("POST /orders/{order_id}/disputes", "disputes.open", lambda w: w.delivered(),
        lambda s, who, ctx: s.disputes.open(who, OpenDispute(
            ctx["order_id"], Reason.NOT_AS_DESCRIBED, "Ordered red, received blue", Solution.REFUND_PARTIAL,
            Money(500, "USD"), ())), only("buyer"),
        lambda r, ctx, caller: r.status is Status.AWAITING_SELLER and r.order_id == ctx["order_id"]),
    Row("GET /disputes", "disputes.list", lambda w: w.awaiting_seller(),
        lambda s, who, ctx: s.disputes.list(who, role_of(who), None, PAGE), EVERYONE,
        lambda r, ctx, caller: ids(r) == ([ctx["dispute_id"]] if caller in PARTIES else [])),
    Row("GET /disputes/{dispute_id}", "disputes.get", lambda w: w.awaiting_seller(),
        lambda s, who, ctx: s.disputes.get(who, ctx["dispute_id"]), READ_BY_PARTIES,
        lambda r, ctx, caller: r.dispute_id == ctx["dispute_id"]),
    Row("POST /disputes/{dispute_id}/evidence", "evidence.request_upload", lambda w: w.awaiting_seller(),
        lambda s, who, ctx: s.evidence.request_upload(who, c.RequestUpload(ctx["dispute_id"], "photo.jpg", "image/jpeg",
                                                                           1234)),
        only("buyer", "seller"), lambda r, ctx, caller: r[0].status == PENDING_UPLOAD and r[0].uploaded_by == caller),
    Row("GET /disputes/{dispute_id}/evidence", "evidence.list", lambda w: w.with_evidence(),
        lambda s, who, ctx: s.evidence.list(who, ctx["dispute_id"]), READ_BY_PARTIES,
        lambda r, ctx, caller: [(e.status, links["download_url"] is not None) for e, links in r] == [(ACCEPTED, True)]),
    Row("POST /disputes/{dispute_id}/messages", "messages.post", lambda w: w.awaiting_seller(),
        lambda s, who, ctx: s.messages.post(who, c.PostMessage(ctx["dispute_id"], "Hello there")),
        only("buyer", "seller", "moderator"), lambda r, ctx, caller: r.author_role == caller),
    Row("GET /disputes/{dispute_id}/messages", "messages.list", lambda w: w.awaiting_seller(),
        lambda s, who, ctx: s.messages.list(who, ctx["dispute_id"], PAGE), READ_BY_PARTIES,
        lambda r, ctx, caller: r == ([], None)),
    Row("GET /moderation/disputes", "disputes.moderation_queue", lambda w: w.escalated(),
        lambda s, who, ctx: s.disputes.moderation_queue(who, QueueFilter(), PAGE), group_only("moderator"),
        lambda r, ctx, caller: ids(r) == [ctx["dispute_id"]]),
    Row("POST /disputes/{dispute_id}/claim", "disputes.claim", lambda w: w.escalated(),
        lambda s, who, ctx: s.disputes.claim(who, ClaimCase(ctx["dispute_id"])), only("moderator"),
        lambda r, ctx, caller: r.assignment is not None and r.assignment.moderator_id == MODERATOR.sub),
    Row("POST /disputes/{dispute_id}/release", "disputes.release", claimed,
        lambda s, who, ctx: s.disputes.release(who, ReleaseCase(ctx["dispute_id"])), only("moderator"),
        lambda r, ctx, caller: r.assignment is None),
    Row("POST /moderation/next", "disputes.next_case", lambda w: w.escalated(),
        lambda s, who, ctx: s.disputes.next_case(who), group_only("moderator"),
        lambda r, ctx, caller: r is not None and r.dispute_id == ctx["dispute_id"]
        and r.assignment is not None and r.assignment.moderator_id == MODERATOR.sub),
    Row("POST /disputes/{dispute_id}/notes", "notes.add", lambda w: w.escalated(),
        lambda s, who, ctx: s.notes.add(who, c.AddNote(ctx["dispute_id"], "Seller ships from a warehouse")),
        only("moderator"), lambda r, ctx, caller: r.author_id == MODERATOR.sub),
    Row("GET /disputes/{dispute_id}/notes", "notes.list", lambda w: w.escalated(),
        lambda s, who, ctx: s.notes.list(who, ctx["dispute_id"], PAGE), only("moderator"),
        lambda r, ctx, caller: r == ([], None)),
    Row("POST /sandbox/disputes/{dispute_id}/expire-deadline", "sandbox.expire_deadline",
        lambda w: w.awaiting_seller(), lambda s, who, ctx: s.sandbox.expire_deadline(who, ctx["dispute_id"]),
        READ_BY_PARTIES, lambda r, ctx, caller: r.status is Status.RESOLVED),
    Row("POST /sandbox/orders/{order_id}/carrier-scans", "sandbox.carrier_scan", lambda w: w.shipped(),
        lambda s, who, ctx: s.sandbox.carrier_scan(who, c.SimulateScan(ctx["order_id"], ScanStatus.DELIVERED)),
        only("buyer", "seller"), lambda r, ctx, caller: r.status is OrderStatus.DELIVERED),
    Row("POST /sandbox/orders/{order_id}/refunds/{refund_id}/settle", "sandbox.settle_refund",
        lambda w: w.refunded(), lambda s, who, ctx: s.sandbox.settle_refund(who, c.SimulateSettlement(
            ctx["order_id"], ctx["refund_id"], None)), READ_BY_PARTIES,
        lambda r, ctx, caller: r.ledger.refund(ctx["refund_id"]).status == "SUCCEEDED"),
    Row("GET /moderation/refunds", "payments.needing_attention", lambda w: w.refund_needing_attention(),
        lambda s, who, ctx: s.payments.needing_attention(who, 100, None), group_only("moderator"),
        lambda r, ctx, caller: ids(r) == [ctx["order_id"]]),
    Row("POST /orders/{order_id}/refunds/{refund_id}/retry", "payments.retry", lambda w: w.refund_needing_attention(),
        lambda s, who, ctx: s.payments.retry(who, ctx["order_id"], ctx["refund_id"]), only("moderator"),
        lambda r, ctx, caller: r.ledger.refund(ctx["refund_id"]).status == "PENDING"),
    Row("GET /sellers/{seller_id}/standing", "moderation.standing", lambda w: {**w.awaiting_seller(), "seller_id": "s-1"},
        lambda s, who, ctx: s.moderation.standing(who, ctx["seller_id"]), readers("seller", "moderator"),
        lambda r, ctx, caller: (r.seller_id, r.orders, r.disputes) == ("s-1", 1, 1)),
    Row("GET /buyers/{buyer_id}/signals", "moderation.signals", lambda w: {**w.awaiting_seller(), "buyer_id": "b-1"},
        lambda s, who, ctx: s.moderation.signals(who, ctx["buyer_id"]), readers("moderator"),
        lambda r, ctx, caller: (r.buyer_id, r.orders, r.disputes_opened) == ("b-1", 1, 1)),
    Row("GET /moderation/rules", "moderation.rules", a_rule, lambda s, who, ctx: s.moderation.rules(who),
        group_only("moderator", "admin"), lambda r, ctx, caller: [x.rule_id for x in r] == ["counterfeits"]),
    Row("PUT /moderation/rules/{rule_id}", "moderation.save_rule", nothing,
        lambda s, who, ctx: s.moderation.save_rule(who, parse.save_rule(RULE, "counterfeits")), group_only("admin"),
        lambda r, ctx, caller: (r.rule_id, r.version) == ("counterfeits", 1)),
    Row("POST /moderation/rules/{rule_id}/preview", "moderation.preview", a_rule,
        lambda s, who, ctx: s.moderation.preview(who, parse.save_rule({**RULE, "priority": 9}, ctx["rule_id"])),
        group_only("admin"), lambda r, ctx, caller: (r[0].version, r[1].considered) == (2, 0)),
    Row("POST /orders/{order_id}/defect-reversal", "moderation.reverse_defect", a_defect,
        lambda s, who, ctx: s.moderation.reverse_defect(who, ctx["order_id"]), group_only("admin"),
        lambda r, ctx, caller: r.defect_reversed),
    Row("GET /moderation/rules/{rule_id}/report", "moderation.report", a_rule,
        lambda s, who, ctx: s.moderation.report(who, ctx["rule_id"]), group_only("moderator", "admin"),
        lambda r, ctx, caller: r[0].rule_id == "counterfeits" and r[1]["evaluated"] == 0),
)
for _row in MATRIX:  # every cell of a service is the impostors' cell too
    _row.outcomes.update({impostor: _row.outcomes["service"] for impostor in IMPOSTORS})

# Routes the HTTP edge answers without a use case on a caller (the webhook verifies a signature).
NO_USE_CASE = {"GET /health", "GET /message-templates", "POST /payments/webhook"}


def cells(outcome: Outcome) -> list[Any]:
    return [pytest.param(row, caller, id=f"{row.use_case}[{caller}]")
            for row in MATRIX for caller in CALLERS if row.outcomes[caller] is outcome]


def refusal(run: Callable[[], Any]) -> DomainError:
    with pytest.raises(DomainError) as err:
        run()
    return err.value


def as_seen(err: DomainError) -> tuple[Any, ...]:
    return type(err), err.code, err.message, err.details


# ---- the matrix ---------------------------------------------------------------------------------
def test_every_route_that_calls_a_use_case_has_a_row_naming_the_use_case_it_calls() -> None:
    from app import app

    # The console's pages call these same use cases (tests/integration/test_console.py checks it).
    routes = {f"{method} {path}": view for path, methods in app.routes.items() for method, view in methods.items()
              if not path.startswith("/console")}
    rows = [row.route for row in MATRIX]
    derived = {str(route) for route in command_routes()}
    assert len(rows) == len(set(rows)), "a route has two rows"
    assert not set(rows) & derived, "a route that performs a transition has a row: its cells are derived"
    assert set(rows) | derived | NO_USE_CASE == set(routes), "rows and the app's routes differ"
    for row in MATRIX:
        source = inspect.getsource(vars(routes[row.route].view_function)["__wrapped__"])
        assert f"services().{row.use_case}(" in source, f"{row.route} does not call {row.use_case}"


@pytest.mark.parametrize(("row", "caller"), cells(ALLOWED))
def test_an_allowed_caller_succeeds(world: World, row: Row, caller: str) -> None:
    ctx = row.given(world, caller)
    result = row.act(world.services, CALLERS[caller], ctx)
    assert row.done(result, ctx, caller), result


def refused_without_a_trace(world: World, row: Row, caller: str) -> tuple[DomainError, Ctx]:
    """The row's use case, refused for ``caller``, and nothing stored or sent because of it."""
    ctx = row.given(world, caller)
    before = world.snapshot()
    err = refusal(lambda: row.act(world.services, CALLERS[caller], ctx))
    assert world.snapshot() == before, f"a refused {row.use_case} by {caller} changed something"
    return err, ctx


@pytest.mark.parametrize(("row", "caller"), cells(Forbidden))
def test_a_party_or_moderator_asking_for_what_is_not_theirs_is_forbidden_and_nothing_changes(
        world: World, row: Row, caller: str) -> None:
    err, _ = refused_without_a_trace(world, row, caller)
    assert isinstance(err, Forbidden) and err.code == "NOT_YOUR_ACTION", as_seen(err)


@pytest.mark.parametrize(("row", "caller"), cells(NotFound))
def test_a_non_party_is_told_it_does_not_exist_exactly_as_for_an_unknown_id_and_nothing_changes(
        world: World, row: Row, caller: str) -> None:
    err, ctx = refused_without_a_trace(world, row, caller)
    assert isinstance(err, NotFound), as_seen(err)
    unknown = {k: f"{k[:-3]}-{uuid.uuid4()}" for k in ctx}
    assert as_seen(refusal(lambda: row.act(world.services, CALLERS[caller], unknown))) == as_seen(err)


# ---- the routes that perform a transition: cells derived from TRANSITIONS ----------------------------
def expected(route: Route, caller: str) -> Outcome:
    """The persons its commands' transitions name succeed, other parties and moderators are refused
    (403), anyone who is no party and no moderator is told the dispute does not exist (404)."""
    if caller in PEOPLE:
        return ALLOWED if ACTOR_OF[caller] in givers(route) else Forbidden
    return NotFound


def derived_cells(outcome: Outcome) -> list[Any]:
    return [pytest.param(route, caller, id=f"{route.name}[{caller}]")
            for route in command_routes() for caller in CALLERS if expected(route, caller) is outcome]


@pytest.mark.parametrize(("route", "caller"), derived_cells(ALLOWED))
def test_an_allowed_caller_succeeds_and_the_route_does_the_transition_it_declares(route: Route, caller: str) -> None:
    node = first_node(route, (caller,))
    with replay(node.opening, node.path) as (w, ctx):
        before = w.dispute(ctx["dispute_id"]).status
        status, _ = call(w, CALLERS[caller], route, ids_of(w, ctx, node.offer_for(route, caller)))
        after = w.dispute(ctx["dispute_id"]).status
    assert status in (200, 201), status
    assert after in leads_to(route, before, ACTOR_OF[caller]), f"{route} by {caller} from {node}: {after}"


def refused_on_route(route: Route, caller: str) -> tuple[DomainError, DomainError]:
    """``route`` for ``caller`` in the shallowest state where someone may give it: the refusal (and
    nothing stored or sent because of it), and the refusal of the same call for ids nobody has."""
    node = first_node(route)
    offer = node.offer_for(route, *PEOPLE)
    with replay(node.opening, node.path) as (w, ctx):
        ids = ids_of(w, ctx, offer)
        before = w.snapshot()
        err = refusal(lambda: call(w, CALLERS[caller], route, ids))
        assert w.snapshot() == before, f"a refused {route} by {caller} changed something"
        unknown = refusal(lambda: call(w, CALLERS[caller], route, {k: f"{k[:-3]}-{uuid.uuid4()}" for k in ids}))
    return err, unknown


@pytest.mark.parametrize(("route", "caller"), derived_cells(Forbidden))
def test_a_party_or_moderator_the_transitions_do_not_name_is_forbidden_and_nothing_changes(
        route: Route, caller: str) -> None:
    err, _ = refused_on_route(route, caller)
    assert isinstance(err, Forbidden) and err.code == "NOT_YOUR_ACTION", as_seen(err)


@pytest.mark.parametrize(("route", "caller"), derived_cells(NotFound))
def test_a_non_party_is_told_the_dispute_does_not_exist_whatever_the_transition(route: Route, caller: str) -> None:
    err, unknown = refused_on_route(route, caller)
    assert isinstance(err, NotFound), as_seen(err)
    assert as_seen(unknown) == as_seen(err)


# ---- lists --------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["buyer", "seller"])
@pytest.mark.parametrize("caller", NON_PARTIES)
def test_lists_show_a_non_party_nothing_of_others(world: World, caller: str, role: str) -> None:
    world.escalated()
    who = CALLERS[caller]
    assert world.services.orders.list(who, role, PAGE) == ([], None)
    assert world.services.disputes.list(who, role, None, PAGE) == ([], None)
    assert world.services.disputes.list(who, role, "ESCALATED", PAGE) == ([], None)


@pytest.mark.parametrize("caller", PARTIES)
def test_a_party_lists_its_own_order_and_dispute_under_its_role_only(world: World, caller: str) -> None:
    ctx = world.escalated()
    who, other = CALLERS[caller], "seller" if caller == "buyer" else "buyer"
    assert ids(world.services.orders.list(who, caller, PAGE)) == [ctx["order_id"]]
    assert ids(world.services.disputes.list(who, caller, None, PAGE)) == [ctx["dispute_id"]]
    assert world.services.orders.list(who, other, PAGE) == ([], None)
    assert world.services.disputes.list(who, other, None, PAGE) == ([], None)


# ---- rules worth naming on their own --------------------------------------------------------------
@pytest.mark.parametrize("caller", PARTIES)
def test_a_party_cannot_accept_its_own_offer(world: World, caller: str) -> None:
    """Accepting is the other party's action: the buyer's request, or the seller's counter-offer,
    cannot be accepted by whoever made it."""
    ctx = world.awaiting_seller() if caller == "buyer" else world.negotiating()
    before = world.snapshot()

    err = refusal(lambda: world.services.disputes.accept_offer(
        CALLERS[caller], AcceptOffer(ctx["dispute_id"], None, ctx["offer_id"])))

    assert isinstance(err, Forbidden) and err.code == "NOT_YOUR_ACTION", as_seen(err)
    assert world.snapshot() == before


@pytest.mark.parametrize("caller", [c for c in CALLERS if c != "moderator"])
def test_the_moderation_queue_is_for_moderators_only(world: World, caller: str) -> None:
    ctx = world.escalated()
    err = refusal(lambda: world.services.disputes.moderation_queue(CALLERS[caller], QueueFilter(), PAGE))
    assert isinstance(err, Forbidden) and err.code == "NOT_YOUR_ACTION", as_seen(err)
    assert ids(world.services.disputes.moderation_queue(MODERATOR, QueueFilter(), PAGE)) == [ctx["dispute_id"]]


@pytest.mark.parametrize(("caller", "refused"), [("buyer", Forbidden), ("seller", Forbidden),
                                                 ("moderator", Forbidden), ("stranger", NotFound)])
def test_only_services_report_tracking_events(world: World, caller: str, refused: type[DomainError]) -> None:
    """Parties and moderators are refused (403); a stranger does not learn the order exists (404)."""
    ctx = world.shipped()
    scan = c.RecordScan(ctx["order_id"], ScanStatus.DELIVERED, T0)
    before = world.snapshot()

    err = refusal(lambda: world.services.orders.record_scan(CALLERS[caller], scan))

    assert type(err) is refused, as_seen(err)
    assert world.snapshot() == before
    assert world.services.orders.record_scan(SERVICE, scan).status is OrderStatus.DELIVERED


@pytest.mark.parametrize("caller", [c for c in CALLERS if c != "service" and c not in IMPOSTORS])
def test_only_services_register_orders_even_for_the_buyer_or_seller_named_in_them(world: World, caller: str) -> None:
    before = world.snapshot()
    err = refusal(lambda: world.services.orders.register(CALLERS[caller], parse.register_order(order_body())))
    assert isinstance(err, Forbidden) and err.code == "NOT_YOUR_ACTION", as_seen(err)
    assert world.snapshot() == before


@pytest.mark.parametrize("impostor", IMPOSTORS)
def test_a_services_token_whose_sub_is_a_partys_id_never_acts_as_that_party(world: World, impostor: str) -> None:
    ctx = world.awaiting_seller()
    who = CALLERS[impostor]
    assert who.sub in ("b-1", "s-1") and who.party_id is None
    before = world.snapshot()
    assert isinstance(refusal(lambda: world.services.orders.get(who, ctx["order_id"])), NotFound)
    assert isinstance(refusal(lambda: world.services.disputes.get(who, ctx["dispute_id"])), NotFound)
    assert isinstance(refusal(lambda: world.services.disputes.cancel(who, Cancel(ctx["dispute_id"], None, None))),
                      NotFound)
    assert world.services.orders.list(who, "buyer", PAGE) == ([], None)
    assert world.services.disputes.list(who, "seller", None, PAGE) == ([], None)
    assert world.snapshot() == before
