"""Who may see or do what: the one place the API's access rules live.

A caller who is not a party of an order or dispute, and no moderator, gets 404 as if it did not
exist; a party asking for an action that is not theirs gets 403. Which *state* allows an action is
the domain's business (domain/disputes.py); this module only knows who is who.
"""
from __future__ import annotations

from ..adapters.auth import Identity
from ..domain.disputes import Actor, Dispute
from ..domain.errors import Forbidden, NotFound
from ..domain.orders import Order
from ..logs import logger


def visible_order(who: Identity, order: Order | None) -> Order:
    """The order, if the caller is one of its parties or a moderator; else 404."""
    if order is None or not (who.sub in (order.buyer_id, order.seller_id) or who.is_moderator):
        raise NotFound("no such order", code="ORDER_NOT_FOUND")
    logger.append_keys(order_id=order.order_id)
    return order


def visible_dispute(who: Identity, dispute: Dispute | None) -> tuple[Dispute, Actor]:
    """The dispute and the caller's part in it (buyer, seller, moderator); else 404."""
    actor = None if dispute is None else dispute.actor_for(who.sub, who.is_moderator)
    if dispute is None or actor is None:
        raise NotFound("no such dispute", code="DISPUTE_NOT_FOUND")
    logger.append_keys(order_id=dispute.order_id)
    return dispute, actor


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise Forbidden(message, code="NOT_YOUR_ACTION")


def require_service(who: Identity, message: str) -> None:
    require(who.is_service, message)


def require_moderator(who: Identity, message: str) -> None:
    require(who.is_moderator, message)


def require_party(actor: Actor, message: str) -> None:
    require(actor in (Actor.BUYER, Actor.SELLER), message)
