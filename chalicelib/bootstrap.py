"""The one place that reads settings, builds AWS clients and wires adapters. Built lazily on first
use and cached for the life of the Lambda container; tests call ``reset()``."""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

from .config import ConfigError, PaymentSettings, Settings
from .domain.policy import Policy
from .logs import logger
from .ports import (
    Clock,
    EventPublisher,
    EvidenceStore,
    InvalidWebhook,
    OutboxStore,
    PaymentProvider,
    PaymentUnavailable,
    RefundOrder,
    RefundQueue,
    RefundReceipt,
    SettlementNotice,
    SettlementSimulator,
    SystemClock,
    Timers,
)
from .relay import OutboxRelay, RefundWorker
from .services import Services
from .services.base import UnitOfWorkFactory
from .services.disputes import Disputes
from .services.evidence import EvidenceUseCases, Inspect
from .services.messages import Messages
from .services.moderation import Moderation
from .services.notes import Notes
from .services.orders import Orders
from .services.payments import Payments
from .services.sandbox import Sandbox
from .services.timers import Timers as TimerUseCases

if TYPE_CHECKING:
    from .adapters.auth import TokenVerifier
    from .console.session import Sessions


@dataclass
class Container:
    """What a function uses, each part built on its first use: a timer never loads the token
    verifier (PyJWT, cryptography), the evidence function never loads Powertools' idempotency."""

    settings: Settings
    services: Services
    relay: OutboxRelay
    clock: Clock
    outbox: OutboxStore
    clients: Clients = field(repr=False)

    @cached_property
    def refund_worker(self) -> RefundWorker:
        """The pay-refunds function's worker: sends what the refund queue hands over."""
        return RefundWorker(self.outbox, self.services.payments.send, self.clock,
                            self.services.payments.stop_newer_attempt)

    @cached_property
    def verifier(self) -> TokenVerifier:
        from .adapters.auth import TokenVerifier

        return TokenVerifier(self.settings.auth)

    @cached_property
    def sessions(self) -> Sessions | None:
        """The console's session signer; None when this stage has no session key (no console)."""
        from .console.session import Sessions

        console = self.settings.console
        key = console.key()  # a deployed stage's secret is read here, by the first console page
        return Sessions(key, console.session_seconds, self.clock) if key else None

    @cached_property
    def console_verifier(self) -> TokenVerifier | None:
        """ID tokens of the console's app client (the hosted UI), when the stage has one."""
        from dataclasses import replace

        from .adapters.auth import TokenVerifier

        hosted = self.settings.console.hosted()
        return TokenVerifier(replace(self.settings.auth, audience=hosted.client_id)) if hosted else None

    @cached_property
    def _idempotency(self) -> tuple[Callable[..., dict[str, Any]], Any]:
        return idempotency(self.settings, self.clients.get("dynamodb"))

    @property
    def idempotent(self) -> Callable[..., dict[str, Any]]:
        return self._idempotency[0]

    @property
    def idempotency_config(self) -> Any:
        return self._idempotency[1]


# How the outbox relay's clients (Step Functions, EventBridge, SQS) wait: seconds to connect and to
# read, and a single attempt (botocore's defaults: 60 s each, and retries).
POST_COMMIT_CLIENT: dict[str, Any] = {"connect_timeout": 2, "read_timeout": 5, "retries": {"total_max_attempts": 1}}


class Clients:
    """The boto3 clients of one shared session, each created on its first call: a GET of a
    dispute builds one DynamoDB client, not one per service the app could use."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str, **kwargs: Any) -> Any:
        with self._lock:
            if service not in self._made:
                self._made[service] = self._session.client(service, **kwargs)
            return self._made[service]

    def lazy(self, service: str, **kwargs: Any) -> Any:
        """A stand-in an adapter keeps as its client; the real one is made on its first call."""
        return _LazyClient(lambda: self.get(service, **kwargs))


class _LazyClient:
    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make

    def __getattr__(self, name: str) -> Any:
        return getattr(self._make(), name)


class LazyProvider:
    """A payment provider made on its first use: the Stripe SDK (about 200 ms to import) and its
    keys load when a refund is sent or a webhook verified, not in every function that wires it."""

    def __init__(self, make: Callable[[], PaymentProvider], name: str) -> None:
        self._make, self.name = make, name
        self._provider: PaymentProvider | None = None
        self._lock = threading.Lock()

    def _get(self) -> PaymentProvider:
        with self._lock:
            if self._provider is None:
                self._provider = self._make()
            return self._provider

    def refund(self, order: RefundOrder) -> RefundReceipt:
        return self._get().refund(order)

    def lookup(self, order: RefundOrder) -> RefundReceipt | None:
        return self._get().lookup(order)

    def cancel(self, order: RefundOrder) -> RefundReceipt | None:
        return self._get().cancel(order)

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> SettlementNotice | None:
        return self._get().parse_webhook(payload, headers)

    def settlement_simulator(self) -> SettlementSimulator | None:
        return self._get().settlement_simulator()


_lock = threading.Lock()
_container: Container | None = None


def inspector() -> Inspect:
    """The file inspectors (Pillow, pypdf), loaded in the function that checks an upload only, with
    pypdf's budget hooks installed (idempotent: cheap on every later upload) and the CPU budget of
    this function's share of a CPU (inspection/budget.py)."""
    from functools import partial

    from .config import inspection_budget_inputs
    from .inspection import budget, inspect, install

    install()
    return partial(inspect, cpu_seconds=budget.configured(*inspection_budget_inputs()))


def use_cases(uow: UnitOfWorkFactory, clock: Clock, policy: Policy, relay: OutboxRelay, publisher: EventPublisher,
              store: EvidenceStore, provider: PaymentProvider, sandbox: bool = False) -> Services:
    """The use cases over one unit-of-work factory (DynamoDB in the app, the fakes in tests)."""
    orders, payments = Orders(uow, clock, policy), Payments(uow, clock, policy, provider, relay.refunds.enqueue)
    moderation = Moderation(uow, clock, policy)
    return Services(orders=orders, disputes=Disputes(uow, clock, policy),
                    evidence=EvidenceUseCases(uow, clock, policy, store, inspector), messages=Messages(uow, clock, policy),
                    notes=Notes(uow, clock, policy), moderation=moderation, payments=payments,
                    timers=TimerUseCases(uow, clock, policy, relay, publisher, orders, payments, moderation),
                    sandbox=Sandbox(uow, clock, policy, sandbox, provider))


class NoPayments:
    """PAYMENT_PROVIDER=none: a function that pays nothing and holds no credentials. A refund owed
    through it stays in the outbox (unknown outcome) for the reconciler, whose function pays."""

    name = "none"

    def refund(self, order: RefundOrder) -> RefundReceipt:
        raise PaymentUnavailable("this function has no payment provider")

    def lookup(self, order: RefundOrder) -> RefundReceipt | None:
        raise PaymentUnavailable("this function has no payment provider")

    def cancel(self, order: RefundOrder) -> RefundReceipt | None:
        raise PaymentUnavailable("this function has no payment provider")

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> SettlementNotice | None:
        raise InvalidWebhook("this function receives no webhooks")

    def settlement_simulator(self) -> SettlementSimulator | None:
        return None


def payment_provider(settings: PaymentSettings, deliver: Callable[[SettlementNotice], object]) -> PaymentProvider:
    """The configured provider. The simulator "calls our webhook" in-process through ``deliver``."""
    if settings.provider == "none":
        return NoPayments()
    if settings.provider == "stripe":
        def stripe() -> PaymentProvider:
            from .adapters.stripe_payments import StripePayments

            api_key = webhook_secret = ""
            try:  # the secret is read here, when a refund is first sent or a webhook first verified
                api_key, webhook_secret = settings.stripe_keys()
            except ConfigError as exc:
                logger.error("Stripe keys unreadable: refunds stay owed until they can be read", why=str(exc))
            return StripePayments(api_key, webhook_secret, settings.stripe_api_base,
                                  credentials=settings.stripe_keys if settings.stripe_secret_id else None)

        return LazyProvider(stripe, "stripe")
    from .adapters.simulated_payments import SimulatedPayments

    return SimulatedPayments(deliver, settle_after=settings.simulated_settle_seconds, auto_settle=True,
                             secret=settings.simulated_webhook_secret)


def build(settings: Settings | None = None, clock: Clock | None = None, timers: Timers | None = None,
          publisher: EventPublisher | None = None, store: EvidenceStore | None = None,
          payments: PaymentProvider | None = None, refunds: RefundQueue | None = None) -> Container:
    """Wire the real adapters (DynamoDB through PynamoDB, Powertools idempotency on DynamoDB,
    Step Functions timers, EventBridge events, S3); tests may pass fakes for the outside world."""
    from botocore.config import Config as BotoConfig
    from pynamodb.connection import Connection

    from .adapters.aws import EventBridgePublisher, S3EvidenceStore, SqsRefundQueue, StepFunctionsTimers
    from .adapters.dynamodb import DynamoOutbox, DynamoUnitOfWork, make_tables, share_botocore_session
    from .adapters.dynamodb.session import boto3_session

    settings = settings or Settings.from_env()
    clock = clock or SystemClock()
    share_botocore_session()
    clients = Clients(boto3_session(settings.region))
    # The relay's clients call after a commit, inside a request of at most 30 s: a short wait and
    # one try each (botocore's default is 60 s and retries), the reconciler being the retry.
    post_commit = BotoConfig(**POST_COMMIT_CLIENT)
    if timers is None:
        if not settings.timer_state_machine_arn:
            raise ConfigError("TIMER_STATE_MACHINE_ARN is required")
        timers = StepFunctionsTimers(clients.lazy("stepfunctions", config=post_commit), settings.timer_state_machine_arn)
    publisher = publisher or EventBridgePublisher(clients.lazy("events", config=post_commit), settings.event_bus_name)
    tables = make_tables(settings.tables, settings.region)
    connection = Connection(region=settings.region)
    outbox = DynamoOutbox(tables)
    # The refunds a commit owes are sent by the pay-refunds function, never in the request.
    refunds = refunds or SqsRefundQueue(clients.lazy("sqs", config=post_commit), settings.refund_queue_url,
                                        settings.refund_queue_name)
    relay = OutboxRelay(outbox, timers, publisher, refunds)

    def uow() -> DynamoUnitOfWork:
        return DynamoUnitOfWork(tables, connection, settings.policy, relay, clock)

    # SigV4 for presigned POST and GET: the SigV2 default is refused by newer regions.
    store = store or S3EvidenceStore(clients.lazy("s3", config=BotoConfig(signature_version="s3v4")),
                                     settings.evidence_bucket)
    services: Services | None = None

    def deliver(notice: SettlementNotice) -> None:
        assert services is not None
        services.payments.settle(notice)

    provider = payments or payment_provider(settings.payments, deliver)
    services = use_cases(uow, clock, settings.policy, relay, publisher, store, provider, settings.sandbox)
    return Container(settings=settings, services=services, relay=relay, clock=clock, outbox=outbox, clients=clients)


def idempotency(settings: Settings, dynamodb: Any) -> tuple[Callable[..., dict[str, Any]], Any]:
    """Powertools' idempotency over its DynamoDB table: the guard the API runs a keyed POST in,
    and its configuration (the API registers the Lambda context on it)."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    store = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)
    config = IdempotencyConfig(
        # The key is scoped to the caller and the route: two users cannot collide on one key.
        event_key_jmespath="[sub, route, params, key]",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=24 * 3600,
    )

    def run_once(request: dict[str, Any], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return run()

    return idempotent_function(data_keyword_argument="request", persistence_store=store, config=config)(run_once), config


def container() -> Container:
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                _container = build()
    return _container


def install(c: Container | None) -> None:
    """Use this container (tests), or drop the cached one so the next call rebuilds it."""
    global _container
    _container = c


def reset() -> None:
    install(None)
