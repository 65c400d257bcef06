"""The sandbox: what app developers need to see a dispute play out without waiting. Only in
`make dev` and a stage run with SANDBOX=true; everywhere else these use cases do not exist (404).
Each goes through the same domain rules as the real thing: a deadline expires as its timer
would, a scan is a carrier's scan, a refund settles as the provider's webhook would say."""
from __future__ import annotations

from ..domain.errors import Conflict, NotFound
from ..domain.identity import Identity
from ..domain.ledger import RefundStatus
from ..domain.orders import Order
from ..domain.policy import Policy
from ..ports import Clock, PaymentProvider
from . import access
from .base import UnitOfWorkFactory, UseCases
from .commands import SimulateScan, SimulateSettlement
from .disputes import DisputeView, save_with_order


class Sandbox(UseCases):
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy, enabled: bool,
                 provider: PaymentProvider) -> None:
        super().__init__(uow, clock, policy)
        self.enabled = enabled
        self.provider = provider

    def _require_sandbox(self) -> None:
        if not self.enabled:
            raise NotFound("no route has this method and path", code="ROUTE_NOT_FOUND")  # as the edge answers

    def expire_deadline(self, who: Identity, dispute_id: str) -> DisputeView:
        """The dispute's pending deadline passes now: its default outcome applies, as its timer's would."""
        self._require_sandbox()
        with self.uow() as uow:
            dispute, _ = access.visible_dispute(who, uow.disputes.get(dispute_id))
            phase = dispute.pending_phase()
            if phase is None:  # ended, or a mediation already flagged overdue
                raise Conflict("no deadline of the dispute is pending (a refund settles through the sandbox's settle route)",
                               code="NO_PENDING_DEADLINE", details={"status": dispute.status.value})
            was_open = dispute.is_open
            # Recorded now, as everything else is: only the "not due yet" check is skipped.
            dispute.expire(phase.action, self.clock.now(), self.policy, early=True)
            saved = save_with_order(uow, dispute, was_open, self.policy)
            uow.commit()
            return saved

    def carrier_scan(self, who: Identity, cmd: SimulateScan) -> Order:
        """A carrier scan of the order's parcel, now (what the tracking service would report)."""
        self._require_sandbox()
        with self.uow() as uow:
            order = access.visible_order(who, uow.orders.get(cmd.order_id))
            access.require(access.is_party(who, order), "only the order's parties simulate scans")
            saved = uow.orders.save(order.record_scan(cmd.status, self.clock.now(), self.clock.now(), self.policy))
            uow.commit()
            return saved

    def settle_refund(self, who: Identity, cmd: SimulateSettlement) -> Order:
        """The simulated provider settles the refund's pending attempt now (or fails it)."""
        self._require_sandbox()
        order_id, refund_id, failure_reason = cmd.order_id, cmd.refund_id, cmd.failure_reason
        with self.uow() as uow:
            order = access.visible_order(who, uow.orders.get(order_id))
        if not order.ledger.has_refund(refund_id):
            raise NotFound("no such refund", code="REFUND_NOT_FOUND")
        refund = order.ledger.refund(refund_id)
        simulator = self.provider.settlement_simulator()
        if simulator is None:
            raise Conflict("refunds settle by themselves only with the simulated provider",
                           code="NOT_SIMULATED_PROVIDER")
        if refund.status is not RefundStatus.PENDING or not simulator.settle_now(refund_id, refund.attempt, failure_reason):
            raise Conflict("the refund has no attempt waiting at the provider", code="REFUND_NOT_PENDING",
                           details={"status": refund.status.value})
        with self.uow() as uow:
            settled = uow.orders.get(order_id)
            assert settled is not None
            return settled
