"""The money of one order: an append-only ledger, its refunds, and the escrow derived from both.

Every movement is an entry, written in the same commit as the change that causes it, never
edited. Where the money is (held, refund pending, refunded, released) is derived from the
entries, and the invariant holds at every instant:

    held == refunded + refund_pending + released + still_held, and none of them negative.

A refund is requested once (its amount leaves what is still held for "refund pending") and is
settled once (it moves on to "refunded"). A failed attempt moves no money: the buyer is still
owed it and it is tried again, under a new attempt number, only once the last attempt failed.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from .errors import Conflict, NotFound, RuleViolation
from .jsontypes import JSONObject
from .money import Money
from .timefmt import fmt, parse, parse_opt


class Entry(str, Enum):
    HOLD = "HOLD"
    RELEASE = "RELEASE"
    REFUND_REQUESTED = "REFUND_REQUESTED"
    REFUND_SETTLED = "REFUND_SETTLED"
    REFUND_FAILED = "REFUND_FAILED"  # an attempt failed: no money moved, the refund is still owed


class EscrowStatus(str, Enum):
    HELD = "HELD"  # some money is still held or on its way back to the buyer
    RELEASED = "RELEASED"  # all of it went to the seller
    REFUNDED = "REFUNDED"  # all of it reached the buyer
    SETTLED = "SETTLED"  # split between the two, all of it arrived


class RefundStatus(str, Enum):
    """Where a refund stands, and what a payment provider says of one of its attempts."""

    PENDING = "PENDING"  # asked for (or accepted by the provider), not settled yet
    SUCCEEDED = "SUCCEEDED"  # the money left for the buyer
    FAILED = "FAILED"  # the attempt failed: no money moved, the buyer is still owed it


PENDING, SUCCEEDED, FAILED = RefundStatus.PENDING, RefundStatus.SUCCEEDED, RefundStatus.FAILED
# An earlier attempt is still live at the provider: a new one is not sent (it could pay twice).
EARLIER_ATTEMPT_PENDING = "EARLIER_ATTEMPT_PENDING"
# The provider holds a refund under this attempt's key for another amount or currency: it exists
# (it may have paid), so it counts as no failure when a later attempt is considered.
AMOUNT_OR_CURRENCY_MISMATCH = "AMOUNT_OR_CURRENCY_MISMATCH"
# Failures after which a new attempt could pay twice, or cannot succeed: a person looks first.
NEEDS_A_PERSON = frozenset({"charge_already_refunded", "amount_too_large", AMOUNT_OR_CURRENCY_MISMATCH,
                            "NO_PAYMENT_REFERENCE", "OUTCOME_UNKNOWN", EARLIER_ATTEMPT_PENDING})
# Why a person must look at a refund a machine cannot settle alone (Refund.attention_reason, for
# moderators only; never shown to the parties, never a failure of the refund itself).
PAID_TWICE = "PAID_TWICE"  # a second attempt succeeded after another had
NOTICE_MISMATCH = "NOTICE_MISMATCH"  # a signed notice whose amount is not the refund's
NEWER_ATTEMPT_LIVE = "NEWER_ATTEMPT_LIVE"  # an older attempt paid late; a newer one could not be cancelled
ATTEMPTS_EXHAUSTED = "ATTEMPTS_EXHAUSTED"  # every automatic attempt failed
# The reasons a person looks where money may have left already, so a new attempt (or paying the
# buyer another way) could pay twice: the payment provider is checked first. The others
# (ATTEMPTS_EXHAUSTED, NO_PAYMENT_REFERENCE) moved no money.
COULD_PAY_TWICE = (NEEDS_A_PERSON - {"NO_PAYMENT_REFERENCE"}) | {PAID_TWICE, NOTICE_MISMATCH, NEWER_ATTEMPT_LIVE}
# What the parties see of a failure: our own codes, else a generic one (a card's fate is the buyer's).
PUBLIC_REASONS = frozenset({"NO_PAYMENT_REFERENCE", AMOUNT_OR_CURRENCY_MISMATCH, "OUTCOME_UNKNOWN",
                            EARLIER_ATTEMPT_PENDING})


def public_reason(reason: str | None) -> str | None:
    return None if reason is None else reason if reason in PUBLIC_REASONS else "PAYMENT_PROVIDER_DECLINED"


@dataclass(frozen=True)
class LedgerEntry:
    kind: Entry
    amount: Money
    at: datetime
    refund_id: str | None = None
    note: str | None = None  # why: the dispute, the sweep, a failure reason

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "amount": self.amount.to_dict(), "at": fmt(self.at),
                "refund_id": self.refund_id, "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LedgerEntry:
        return cls(Entry(d["kind"]), Money.from_dict(d["amount"]), parse(d["at"]), d.get("refund_id"), d.get("note"))


@dataclass(frozen=True)
class RefundMove:
    """A refund's status or attempt moved (what the dispute's timeline shows of it): when, to
    what, and why the attempt failed as the parties may read it (``public_reason``)."""

    at: datetime
    status: RefundStatus
    attempt: int
    failure_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"at": fmt(self.at), "status": self.status.value, "attempt": self.attempt,
                "failure_reason": self.failure_reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RefundMove:
        return cls(parse(d["at"]), RefundStatus(d["status"]), int(d["attempt"]), d.get("failure_reason"))


@dataclass(frozen=True)
class Refund:
    """Money owed back to the buyer, paid through the payment provider, exactly once. The order's
    ledger is its only record: a dispute shows it from here (services.disputes.DisputeView)."""

    refund_id: str
    amount: Money
    cause: str  # DISPUTE | NOT_SHIPPED
    dispute_id: str | None
    status: RefundStatus
    attempt: int  # the current attempt; the provider's idempotency key is "<refund_id>:<attempt>"
    created_at: datetime
    updated_at: datetime
    provider_refund_id: str | None = None
    failure_reason: str | None = None
    needs_attention: bool = False  # a person must look (attention_reason says why)
    settlement_round: int = 0  # how many settlement timers were started (overdue restarts one)
    settle_by: datetime | None = None  # the current settlement deadline
    sent_at: datetime | None = None  # when the current attempt was first sent (None: never tried)
    attention_reason: str | None = None  # why a person must look (moderators only)
    # Every move of its status or attempt, oldest first (Ledger._update appends them); a new
    # settlement deadline alone is no move. Refunds stored before it existed read as none.
    history: tuple[RefundMove, ...] = ()

    @property
    def last_moved_at(self) -> datetime:
        """When the parties last saw it move (its request, else its latest move)."""
        return self.history[-1].at if self.history else self.created_at

    @property
    def settled(self) -> bool:
        return self.status == SUCCEEDED

    def awaits_settlement(self, round_: int) -> bool:
        """Still pending at the settlement deadline of timer round ``round_``: anything else
        (settled, failed, a newer round started) makes that deadline stale."""
        return self.status == PENDING and self.settlement_round == round_

    def awaits_retry(self, attempt: int) -> bool:
        """Failed at ``attempt`` and left to the machine: anything else makes its retry stale."""
        return self.status == FAILED and self.attempt == attempt and not self.needs_attention

    @property
    def public_failure_reason(self) -> str | None:
        """What the parties see: why the current attempt failed, and only while it has."""
        return public_reason(self.failure_reason) if self.status == FAILED else None

    def to_dict(self) -> dict[str, Any]:
        return {"refund_id": self.refund_id, "amount": self.amount.to_dict(), "cause": self.cause,
                "dispute_id": self.dispute_id, "status": self.status.value, "attempt": self.attempt,
                "created_at": fmt(self.created_at), "updated_at": fmt(self.updated_at),
                "provider_refund_id": self.provider_refund_id, "failure_reason": self.failure_reason,
                "needs_attention": self.needs_attention, "settlement_round": self.settlement_round,
                "settle_by": fmt(self.settle_by), "sent_at": fmt(self.sent_at),
                "attention_reason": self.attention_reason, "history": [m.to_dict() for m in self.history]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Refund:
        return cls(refund_id=d["refund_id"], amount=Money.from_dict(d["amount"]), cause=d["cause"],
                   dispute_id=d.get("dispute_id"), status=RefundStatus(d["status"]), attempt=int(d["attempt"]),
                   created_at=parse(d["created_at"]), updated_at=parse(d["updated_at"]),
                   provider_refund_id=d.get("provider_refund_id"), failure_reason=d.get("failure_reason"),
                   needs_attention=bool(d.get("needs_attention")), settlement_round=int(d.get("settlement_round") or 0),
                   settle_by=parse_opt(d.get("settle_by")), sent_at=parse_opt(d.get("sent_at")),
                   attention_reason=d.get("attention_reason") or _legacy_attention(d),
                   history=tuple(RefundMove.from_dict(m) for m in d.get("history") or []))


@dataclass(frozen=True)
class Escrow:
    """Where the order's money is, derived from its ledger."""

    held: Money
    refunded: Money
    refund_pending: Money
    released: Money

    @property
    def still_held(self) -> Money:
        return self.held - self.refunded - self.refund_pending - self.released

    @property
    def status(self) -> EscrowStatus:
        if self.still_held.amount > 0 or self.refund_pending.amount > 0:
            return EscrowStatus.HELD
        if self.refunded.amount == 0:
            return EscrowStatus.RELEASED
        if self.released.amount == 0:
            return EscrowStatus.REFUNDED
        return EscrowStatus.SETTLED

    @classmethod
    def of(cls, entries: tuple[LedgerEntry, ...], currency: str) -> Escrow:
        sums = {kind: Money.zero(currency) for kind in Entry}
        for e in entries:
            sums[e.kind] = sums[e.kind] + e.amount
        return cls(held=sums[Entry.HOLD], refunded=sums[Entry.REFUND_SETTLED],
                   refund_pending=sums[Entry.REFUND_REQUESTED] - sums[Entry.REFUND_SETTLED],
                   released=sums[Entry.RELEASE])

    def check(self) -> None:
        """The invariant; a violation is a bug, never a state to store."""
        parts = (self.refunded, self.refund_pending, self.released, self.still_held)
        assert all(p.amount >= 0 for p in parts), f"negative escrow part: {self}"
        assert sum(p.amount for p in parts) == self.held.amount, f"escrow does not balance: {self}"


@dataclass(frozen=True)
class Ledger:
    """The entries and refunds of one order. Every method returns a new ledger."""

    entries: tuple[LedgerEntry, ...]
    refunds: tuple[Refund, ...]
    currency: str

    @classmethod
    def hold(cls, total: Money, now: datetime) -> Ledger:
        return cls((LedgerEntry(Entry.HOLD, total, now),), (), total.currency)

    @property
    def escrow(self) -> Escrow:
        return Escrow.of(self.entries, self.currency)

    def refund(self, refund_id: str) -> Refund:
        for r in self.refunds:
            if r.refund_id == refund_id:
                return r
        raise NotFound("no such refund on this order", code="REFUND_NOT_FOUND", details={"refund_id": refund_id})

    def has_refund(self, refund_id: str) -> bool:
        return any(r.refund_id == refund_id for r in self.refunds)

    # ---- movements ------------------------------------------------------------------------
    def release(self, amount: Money, now: datetime, note: str) -> Ledger:
        """Pay ``amount`` of what is still held to the seller."""
        self._within_still_held(amount)
        if amount.amount == 0:
            return self
        return self._with(LedgerEntry(Entry.RELEASE, amount, now, note=note))

    def request_refund(self, amount: Money, now: datetime, settle_by: datetime, cause: str,
                       dispute_id: str | None = None, refund_id: str | None = None) -> tuple[Ledger, Refund]:
        """Owe ``amount`` back to the buyer (it stops being held for the seller at once)."""
        self._within_still_held(amount)
        if amount.amount <= 0:
            raise RuleViolation("a refund must be of more than nothing", code="INVALID_AMOUNT")
        refund = Refund(refund_id=refund_id or str(uuid.uuid4()), amount=amount, cause=cause, dispute_id=dispute_id,
                        status=PENDING, attempt=1, created_at=now, updated_at=now, settlement_round=1,
                        settle_by=settle_by)
        if self.has_refund(refund.refund_id):
            raise Conflict("this refund was already requested", code="REFUND_EXISTS")
        ledger = replace(self._with(LedgerEntry(Entry.REFUND_REQUESTED, amount, now, refund.refund_id, cause)),
                         refunds=(*self.refunds, refund))
        return ledger, refund

    def refund_sending(self, refund_id: str, attempt: int, now: datetime) -> Ledger:
        """Written before the first call to the provider: a later call then asks what became of
        this attempt before sending it again (idempotency keys do not live forever)."""
        r = self.refund(refund_id)
        if r.status != PENDING or r.attempt != attempt or r.sent_at is not None:
            return self
        return self._update(replace(r, sent_at=now))

    def flag(self, refund_id: str, reason: str, now: datetime) -> Ledger:
        """Something a machine cannot settle (paid twice? a notice that does not match): a person
        looks. The refund's own status and failure stay what the provider said."""
        r = self.refund(refund_id)
        if r.needs_attention and r.attention_reason == reason:
            return self
        return self._update(replace(r, needs_attention=True, attention_reason=reason, updated_at=now))

    def refund_submitted(self, refund_id: str, attempt: int, provider_refund_id: str | None, now: datetime) -> Ledger:
        """The provider accepted the attempt and will settle it later."""
        r = self.refund(refund_id)
        if r.status != PENDING or r.attempt != attempt or r.provider_refund_id == provider_refund_id:
            return self
        return self._update(replace(r, provider_refund_id=provider_refund_id, updated_at=now))

    def refund_settled(self, refund_id: str, attempt: int, provider_refund_id: str | None, now: datetime) -> Ledger:
        """The money reached the buyer. Settles once: a repeated or late notice changes nothing.
        An earlier attempt we had seen fail may still report success: the money left, so it counts;
        if a newer attempt was already sent, it could pay too: the refund is held for a person
        (NEWER_ATTEMPT_LIVE) until that attempt is known to have failed (cancelled)."""
        r = self.refund(refund_id)
        if r.status == SUCCEEDED or attempt > r.attempt or attempt < 1:
            return self
        newer_live = attempt < r.attempt and r.status == PENDING and r.sent_at is not None
        settled = replace(r, status=SUCCEEDED, provider_refund_id=provider_refund_id or r.provider_refund_id,
                          failure_reason=None, needs_attention=newer_live,
                          attention_reason=NEWER_ATTEMPT_LIVE if newer_live else None, updated_at=now)
        return self._update(settled)._with(LedgerEntry(Entry.REFUND_SETTLED, r.amount, now, refund_id))

    def refund_failed(self, refund_id: str, attempt: int, reason: str, now: datetime, max_attempts: int) -> Ledger:
        """The attempt failed: nothing moved, the buyer is still owed the money. After the last
        automatic attempt the refund needs a person."""
        r = self.refund(refund_id)
        if r.status == SUCCEEDED and r.attention_reason == NEWER_ATTEMPT_LIVE and attempt == r.attempt:
            # The newer attempt, live when an older one paid late, failed (was cancelled): paid once.
            return self._update(replace(r, needs_attention=False, attention_reason=None, updated_at=now))
        if r.status != PENDING or r.attempt != attempt:
            return self
        attention = reason if reason in NEEDS_A_PERSON else ATTEMPTS_EXHAUSTED if attempt >= max_attempts else None
        failed = replace(r, status=FAILED, failure_reason=reason, needs_attention=attention is not None,
                         attention_reason=attention, updated_at=now)
        return self._update(failed)._with(LedgerEntry(Entry.REFUND_FAILED, r.amount, now, refund_id, reason))

    def retry_refusal(self, refund_id: str) -> Conflict | None:
        """Why the refund cannot be tried again now (only a failed one is), or None."""
        r = self.refund(refund_id)
        if r.status != FAILED:
            return Conflict(f"only a failed refund is retried; this one is {r.status.value}", code="REFUND_NOT_FAILED",
                            details={"status": r.status.value})
        return None

    def retry_refund(self, refund_id: str, now: datetime, settle_by: datetime) -> tuple[Ledger, Refund]:
        """A new attempt of a failed refund (a new idempotency key: the last attempt is final)."""
        refusal = self.retry_refusal(refund_id)
        if refusal is not None:
            raise refusal
        r = self.refund(refund_id)
        again = replace(r, status=PENDING, attempt=r.attempt + 1, provider_refund_id=None, needs_attention=False,
                        attention_reason=None, settlement_round=r.settlement_round + 1, settle_by=settle_by,
                        sent_at=None, updated_at=now)
        return self._update(again), again

    def settlement_overdue(self, refund_id: str, now: datetime, settle_by: datetime) -> tuple[Ledger, Refund]:
        """The settlement deadline passed while pending: a new settlement timer round starts."""
        r = self.refund(refund_id)
        late = replace(r, settlement_round=r.settlement_round + 1, settle_by=settle_by, updated_at=now)
        return self._update(late), late

    # ---- internals ------------------------------------------------------------------------
    def _within_still_held(self, amount: Money) -> None:
        still = self.escrow.still_held
        if amount.currency != self.currency:
            raise RuleViolation(f"amount must be in the order's currency {self.currency}", code="INVALID_AMOUNT",
                                details={"expected_currency": self.currency})
        if amount.amount < 0 or amount.amount > still.amount:
            raise RuleViolation("more than the escrow still holds", code="INVALID_AMOUNT",
                                details={"still_held": still.to_dict()})

    def _with(self, entry: LedgerEntry) -> Ledger:
        ledger = replace(self, entries=(*self.entries, entry))
        ledger.escrow.check()
        return ledger

    def _update(self, refund: Refund) -> Ledger:
        """Replace the refund; a move of its status or attempt joins its history (the one place)."""
        before = self.refund(refund.refund_id)
        if (before.status, before.attempt) != (refund.status, refund.attempt):
            move = RefundMove(refund.updated_at, refund.status, refund.attempt, refund.public_failure_reason)
            refund = replace(refund, history=(*before.history, move))
        return replace(self, refunds=tuple(refund if r.refund_id == refund.refund_id else r for r in self.refunds))

    # ---- persistence shape ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"entries": [e.to_dict() for e in self.entries], "refunds": [r.to_dict() for r in self.refunds]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], currency: str) -> Ledger:
        return cls(tuple(LedgerEntry.from_dict(e) for e in d.get("entries") or []),
                   tuple(Refund.from_dict(r) for r in d.get("refunds") or []), currency)


def _legacy_attention(d: dict[str, Any]) -> str | None:
    """Refunds stored before attention_reason existed kept a flag's reason in failure_reason."""
    if not d.get("needs_attention"):
        return None
    reason = d.get("failure_reason")
    return reason if reason in NEEDS_A_PERSON | {PAID_TWICE, NOTICE_MISMATCH} else ATTEMPTS_EXHAUSTED


def retry_delay(base: timedelta, attempt: int) -> timedelta:
    """Backoff before attempt ``attempt + 1``: base, 2x base, 4x base..."""
    return base * (1 << max(0, attempt - 1))


@dataclass(frozen=True)
class PayRefund:
    """Send (or send again, with the same idempotency key) one attempt of a refund."""

    order_id: str
    refund_id: str
    attempt: int


@dataclass(frozen=True)
class MoneyEvent:
    """A money movement subscribers hear about (refund.requested, escrow.released...)."""

    detail_type: str
    details: JSONObject
