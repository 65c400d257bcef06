"""A payment provider that behaves like a card processor, in process: the default for `make dev`
and the tests. Refunds are idempotent, settle asynchronously, and faults can be scripted."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.ledger import RefundStatus
from ..domain.money import Money
from ..ports import (
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    InvalidWebhook,
    PaymentUnavailable,
    RefundOrder,
    RefundReceipt,
    SettlementNotice,
    attempt_number,
)

MAX_DELIVERIES = 20  # like a real webhook sender, give up on a receiver that keeps refusing
SIGNATURE_HEADER = "X-Sim-Signature"
_UNSCRIPTED: tuple[str, Any] = ("", None)


@dataclass
class _Attempt:
    order: RefundOrder
    provider_id: str
    due: float
    status: RefundStatus = REFUND_PENDING
    failure_reason: str | None = None  # set early by fail_next, but only told once it has FAILED

    def receipt(self) -> RefundReceipt:
        return RefundReceipt(self.status, self.provider_id, self.failure_reason if self.status == REFUND_FAILED else None)


@dataclass
class _Delivery:
    notice: SettlementNotice
    due: float
    tries: int = 0


class SimulatedPayments:
    """An in-process card processor: idempotent refunds, delayed settlement, signed webhooks."""

    name = "simulated"

    def __init__(self, deliver: Callable[[SettlementNotice], object] | None = None, *, settle_after: float = 1.0,
                 auto_settle: bool = True, redeliver_after: float = 2.0, secret: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settle_after = settle_after  # read at each new attempt, so it may change at runtime
        self.redeliver_after = redeliver_after
        self.sent: dict[str, Money] = {}  # idempotency key -> money that actually left
        self.calls = 0  # refund() calls, whatever their outcome
        self.undelivered: list[SettlementNotice] = []  # notices dropped after MAX_DELIVERIES refusals
        self._deliver = deliver
        # Never a known constant: a forged webhook must not verify (random unless configured).
        self._secret = (secret or secrets.token_hex(32)).encode()
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())  # the one lock guarding everything below
        self._attempts: dict[str, _Attempt] = {}
        self._script: deque[tuple[str, Any]] = deque()
        self._outbox: list[_Delivery] = []
        self._closed = False
        self._cancels_refused = False
        self._thread: threading.Thread | None = None
        if auto_settle:
            self._thread = threading.Thread(target=self._run, name="simulated-payments", daemon=True)
            self._thread.start()

    # ---- fault injection: each call to refund() consumes one scripted behaviour, if any ----------
    def _script_next(self, n: int, kind: str, arg: Any = None) -> None:
        with self._cond:  # a repeated key consumes one too: the fault is on the call, not the attempt
            self._script.extend([(kind, arg)] * n)

    def fail_next(self, n: int = 1, reason: str = "card_declined") -> None:
        self._script_next(n, "fail", reason)

    def timeout_next(self, n: int = 1, after_accepting: bool = False) -> None:
        self._script_next(n, "timeout", after_accepting)

    def garbage_next(self, n: int = 1) -> None:
        self._script_next(n, "garbage")

    def settle_late(self, n: int = 1, extra_seconds: float = 5.0) -> None:
        self._script_next(n, "late", extra_seconds)

    def refuse_next(self, n: int = 1, reason: str = "charge_already_refunded") -> None:
        self._script_next(n, "refuse", reason)

    def refuse_cancels(self, refuse: bool = True) -> None:
        """Like a processor whose pending refunds are already on their way: cancel() changes nothing."""
        with self._cond:
            self._cancels_refused = refuse

    def change_mind(self, refund_id: str, attempt: int, deliver: bool = True) -> SettlementNotice | None:
        """The provider changes its mind: an attempt it said FAILED succeeds after all (the money
        leaves), and its notice is delivered like any other (or lost, ``deliver=False``). None if
        that attempt had not failed."""
        with self._cond:
            found = self._attempts.get(f"{refund_id}:{attempt}")
            if found is None or found.status != REFUND_FAILED:
                return None
            found.status, found.failure_reason = REFUND_SUCCEEDED, None
            assert found.order.idempotency_key not in self.sent, "money counted twice"
            self.sent[found.order.idempotency_key] = found.order.amount
            notice = self._notice(found)
        if deliver:
            self._send([_Delivery(notice, 0.0)], None)
        return notice

    # ---- the PaymentProvider port ------------------------------------------------------------------
    def refund(self, order: RefundOrder) -> RefundReceipt:
        """Accept the attempt once per idempotency key; repeats answer its current state."""
        with self._cond:
            self.calls += 1
            kind, arg = self._script.popleft() if self._script else _UNSCRIPTED
            if kind == "garbage":
                raise PaymentUnavailable("unreadable answer")
            if kind == "timeout" and not arg:
                raise PaymentUnavailable("timed out")  # lost on the way there: the provider never saw it
            key = order.idempotency_key
            attempt = self._attempts.get(key)
            if attempt is not None and attempt.order != order:
                raise PaymentUnavailable("idempotency key reused with other parameters")
            if attempt is None:
                attempt = _Attempt(order, f"sim_re_{uuid.uuid4().hex}", self._clock() + self.settle_after)
                if kind in ("fail", "refuse"):
                    attempt.failure_reason = arg
                if kind == "refuse":  # rejected outright: never settles, no notice, no money
                    attempt.status = REFUND_FAILED
                elif kind == "late":
                    attempt.due += arg
                self._attempts[key] = attempt
                self._cond.notify_all()
            if kind == "timeout":
                raise PaymentUnavailable("timed out")  # accepted, but the answer was lost on the way back
            return attempt.receipt()

    def lookup(self, order: RefundOrder) -> RefundReceipt | None:
        with self._cond:
            attempt = self._attempts.get(order.idempotency_key)
            return attempt.receipt() if attempt else None

    def cancel(self, order: RefundOrder) -> RefundReceipt | None:
        """A pending attempt is cancelled (FAILED "canceled", no money, a notice) unless cancels
        are refused; a settled one stays as it is."""
        with self._cond:
            attempt = self._attempts.get(order.idempotency_key)
            if attempt is None or attempt.status != REFUND_PENDING or self._cancels_refused:
                return attempt.receipt() if attempt else None
            attempt.status, attempt.failure_reason = REFUND_FAILED, "canceled"
            notice = self._notice(attempt)
            receipt = attempt.receipt()
        if self._deliver is not None:
            self._send([_Delivery(notice, 0.0)], None)
        return receipt

    def sign(self, notice: SettlementNotice) -> tuple[bytes, dict[str, str]]:
        """The webhook this simulator would send for ``notice``: payload and headers."""
        data = {"refund_id": notice.refund_id, "attempt": notice.attempt, "provider_refund_id": notice.provider_refund_id,
                "status": notice.status, "amount": notice.amount.to_dict(), "failure_reason": notice.failure_reason,
                "order_id": notice.order_id}
        payload = json.dumps({"id": notice.event_id, "type": "refund.updated", "data": data}, sort_keys=True).encode()
        return payload, self.sign_raw(payload)

    def sign_raw(self, payload: bytes) -> dict[str, str]:
        """The headers this simulator would sign ``payload`` with (whatever the payload says)."""
        signature = hmac.new(self._secret, payload, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", SIGNATURE_HEADER: signature}

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> SettlementNotice | None:
        # header names are case-insensitive over HTTP, and a test may pass a plain dict
        given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), "")
        expected = hmac.new(self._secret, payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), str(given).encode()):
            raise InvalidWebhook("bad signature")
        try:
            event = json.loads(payload)
            if event.get("type") != "refund.updated":
                return None
            data = event["data"]
            status, reason = data["status"], data.get("failure_reason")
            if status not in (REFUND_PENDING, REFUND_SUCCEEDED, REFUND_FAILED) or not isinstance(reason, str | None):
                raise ValueError("unexpected status or failure_reason")
            if type(data["amount"].get("amount")) is not int:  # 2000.9 is not 2000, nor 1e400 a sum
                raise ValueError("the amount is not a whole number of minor units")
            return SettlementNotice(str(event["id"]), str(data["refund_id"]), attempt_number(data["attempt"]),
                                    str(data["provider_refund_id"]), status, Money.from_dict(data["amount"]), reason,
                                    str(data.get("order_id") or ""))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidWebhook("unreadable payload") from exc

    # ---- accounting --------------------------------------------------------------------------------
    def sent_for(self, refund_id: str) -> int:
        """Minor units sent over every attempt of one refund."""
        with self._cond:
            return sum(m.amount for k, m in self.sent.items() if self._attempts[k].order.refund_id == refund_id)

    def attempts(self, refund_id: str) -> list[tuple[RefundOrder, RefundReceipt]]:
        with self._cond:
            found = [a for a in self._attempts.values() if a.order.refund_id == refund_id]
            return [(a.order, a.receipt()) for a in sorted(found, key=lambda a: a.order.attempt)]

    # ---- settlement and delivery -------------------------------------------------------------------
    def settlement_simulator(self) -> SimulatedPayments:
        """This provider settles on request (the sandbox's capability)."""
        return self
    def settle_now(self, refund_id: str, attempt: int, failure_reason: str | None = None) -> list[SettlementNotice]:
        """The sandbox's "make it settle": that pending attempt settles at once, failing with
        ``failure_reason`` if one is given, and its notice is delivered like any other."""
        with self._cond:
            pending = self._attempts.get(f"{refund_id}:{attempt}")
            if pending is None or pending.status != REFUND_PENDING:
                return []
            pending.failure_reason, pending.due = failure_reason, self._clock()
        return self.settle_due()

    def settle_due(self, now: float | None = None) -> list[SettlementNotice]:
        """Settle every attempt due by ``now``, deliver what is due, return the new notices."""
        at = self._clock() if now is None else now
        with self._cond:
            settled, ready = self._pump(at)
        self._send(ready, at)
        return settled

    def _pump(self, now: float) -> tuple[list[SettlementNotice], list[_Delivery]]:
        """Under the lock: settle what is due and take the deliveries due."""
        settled = []
        for key, attempt in self._attempts.items():
            if attempt.status != REFUND_PENDING or attempt.due > now:
                continue
            attempt.status = REFUND_SUCCEEDED if attempt.failure_reason is None else REFUND_FAILED
            if attempt.status == REFUND_SUCCEEDED:
                assert key not in self.sent, f"money counted twice for {key}"
                self.sent[key] = attempt.order.amount
            notice = self._notice(attempt)
            settled.append(notice)
            if self._deliver is not None:
                self._outbox.append(_Delivery(notice, now))
        ready = [d for d in self._outbox if d.due <= now]
        self._outbox = [d for d in self._outbox if d.due > now]
        return settled, ready

    @staticmethod
    def _notice(attempt: _Attempt) -> SettlementNotice:
        order = attempt.order
        return SettlementNotice(f"sim_evt_{uuid.uuid4().hex}", order.refund_id, order.attempt, attempt.provider_id,
                                attempt.status, order.amount, attempt.failure_reason, order.order_id)

    def _send(self, ready: list[_Delivery], now: float | None) -> None:
        # outside the lock: the receiver is the service, which may call refund() or lookup() back
        deliver = self._deliver
        for delivery in ready:
            try:
                if deliver is not None:
                    deliver(delivery.notice)
            except Exception:  # noqa: BLE001 - whatever the receiver's failure, a webhook is simply retried later
                delivery.tries += 1
                with self._cond:
                    if delivery.tries < MAX_DELIVERIES:
                        delivery.due = (self._clock() if now is None else now) + self.redeliver_after
                        self._outbox.append(delivery)
                        self._cond.notify_all()
                    else:
                        self.undelivered.append(delivery.notice)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                now = self._clock()
                _, ready = self._pump(now)
                if not ready:
                    dues = [a.due for a in self._attempts.values() if a.status == REFUND_PENDING]
                    dues += [d.due for d in self._outbox]
                    self._cond.wait(max(0.0, min(dues) - now) if dues else None)  # until due or notified
                    continue
            self._send(ready, None)

    def close(self) -> None:
        """Stop the background thread (if any)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> SimulatedPayments:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
