"""Who may see or do what: the one place the API's access rules live.

A caller who is not a party of an order or dispute, and no moderator, gets 404 as if it did not
exist; a party asking for an action that is not theirs gets 403. Which *state* allows an action is
the domain's business (domain/disputes.py); this module only knows who is who.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum

from ..domain.disputes import Actor, Command, Dispute
from ..domain.errors import Forbidden, NotFound
from ..domain.identity import Identity
from ..domain.orders import ORDER_ROLES, Order, OrderCommand
from ..domain.policy import Policy
from ..logs import logger


def is_party(who: Identity, order: Order) -> bool:
    """Whether the caller is the order's buyer or seller (a person: never a service)."""
    return who.party_id is not None and who.party_id in (order.buyer_id, order.seller_id)


def visible_order(who: Identity, order: Order | None) -> Order:
    """The order, if the caller is one of its parties or a moderator; else 404."""
    if order is None or not (is_party(who, order) or who.is_moderator):
        raise NotFound("no such order", code="ORDER_NOT_FOUND")
    logger.append_keys(order_id=order.order_id)
    return order


def visible_dispute(who: Identity, dispute: Dispute | None) -> tuple[Dispute, Actor]:
    """The dispute and the caller's part in it (buyer, seller, moderator); else 404."""
    actor = None if dispute is None else dispute.actor_for(who.party_id, who.is_moderator)
    if dispute is None or actor is None:
        raise NotFound("no such dispute", code="DISPUTE_NOT_FOUND")
    logger.append_keys(order_id=dispute.order_id)
    return dispute, actor


# ---- what a caller may do now (the apps draw their buttons from this) --------------------------
class Grant(str, Enum):
    """What the access rules allow on a dispute beside its transition table's commands."""

    UPLOAD_EVIDENCE = "UPLOAD_EVIDENCE"
    POST_MESSAGE = "POST_MESSAGE"
    CLAIM = "CLAIM"
    RELEASE = "RELEASE"
    ADD_NOTE = "ADD_NOTE"


# What a caller may do, with the path ids it needs (an offer's, a refund's). The route that performs
# each names it once (chalicelib/api: Api.route(action=...)); available_actions is drawn from that.
Allowed = list[tuple[Command | OrderCommand | Grant, dict[str, str]]]


def dispute_actions(who: Identity, dispute: Dispute, policy: Policy, now: datetime) -> Allowed:
    """What the caller may do on the dispute now: the domain's transitions, and what the access
    rules allow beside them (evidence and messages while it is open; for moderators, the claim and
    notes; a case another moderator holds is theirs to decide and write on)."""
    actor = dispute.actor_for(who.party_id, who.is_moderator)
    if actor is None:
        return []
    held = dispute.holder(now)
    held_by_other = actor is Actor.MODERATOR and held is not None and held.moderator_id != who.sub
    out: Allowed = []
    if not held_by_other:
        out += [(command, {"offer_id": offer_id} if offer_id else {})
                for command, offer_id in dispute.allowed(actor, policy)]
    if dispute.may_take_evidence_slot(actor):  # a party, with a free place of their quota
        out.append((Grant.UPLOAD_EVIDENCE, {}))
    if dispute.is_open and not held_by_other:
        out.append((Grant.POST_MESSAGE, {}))
    if actor is Actor.MODERATOR:
        if dispute.may_claim(who.sub, now):
            out.append((Grant.CLAIM, {}))
        if held is not None and held.moderator_id == who.sub:
            out.append((Grant.RELEASE, {}))
        out.append((Grant.ADD_NOTE, {}))
    return out


def gives(who: Identity, order: Order, command: OrderCommand) -> bool:
    """Whether the caller is who gives ``command`` on the order (``ORDER_ROLES``)."""
    role = ORDER_ROLES[command]
    if role == "moderator":  # never on an order of their own: a moderator who is a party is that party
        return who.is_moderator and not is_party(who, order)
    return who.party_id is not None and who.party_id == (order.seller_id if role == "seller" else order.buyer_id)


def require_order_role(who: Identity, order: Order, command: OrderCommand, message: str) -> None:
    require(gives(who, order, command), message)


def order_actions(who: Identity, order: Order, now: datetime, policy: Policy) -> Allowed:
    """What the caller may do on the order now: what the order allows (its own guards), for the
    role that gives each command."""
    return [(command, {"refund_id": refund_id} if refund_id else {})
            for command, refund_id in order.allowed(now, policy) if gives(who, order, command)]


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise Forbidden(message, code="NOT_YOUR_ACTION")


def require_scope(who: Identity, scope: str, message: str) -> None:
    """A platform service granted ``scope`` (client credentials); people never are."""
    require(who.may(scope), message)


def require_moderator(who: Identity, message: str) -> None:
    require(who.is_moderator, message)


def require_party(actor: Actor, message: str) -> None:
    require(actor in (Actor.BUYER, Actor.SELLER), message)
