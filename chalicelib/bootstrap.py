"""The one place that reads settings, builds AWS clients and wires adapters. Built lazily on first
use and cached for the life of the Lambda container; tests call ``reset()``."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from .adapters.auth import TokenVerifier
from .config import ConfigError, Settings
from .ports import Clock, EventPublisher, EvidenceStore, Repository, SystemClock, Timers
from .relay import OutboxRelay
from .services import DisputeService


@dataclass
class Container:
    settings: Settings
    service: DisputeService
    verifier: TokenVerifier
    idempotent: Callable[..., dict[str, Any]]
    idempotency_config: Any


_lock = threading.Lock()
_container: Container | None = None


def build(settings: Settings | None = None, repo: Repository | None = None, clock: Clock | None = None,
          timers: Timers | None = None, publisher: EventPublisher | None = None,
          store: EvidenceStore | None = None) -> Container:
    """Wire the real adapters (DynamoDB through PynamoDB, Powertools idempotency on DynamoDB,
    Step Functions timers, EventBridge events); tests may pass fakes for any of them."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from botocore.config import Config as BotoConfig

    from .adapters.aws import EventBridgePublisher, S3EvidenceStore, StepFunctionsTimers
    from .adapters.dynamodb import DynamoRepository, bind_models

    settings = settings or Settings.from_env()
    if timers is None:
        if not settings.timer_state_machine_arn:
            raise ConfigError("TIMER_STATE_MACHINE_ARN is required")
        timers = StepFunctionsTimers(boto3.client("stepfunctions", region_name=settings.region),
                                     settings.timer_state_machine_arn)
    publisher = publisher or EventBridgePublisher(boto3.client("events", region_name=settings.region),
                                                  settings.event_bus_name)
    if repo is None:
        bind_models(settings.tables, settings.region)
        repo = DynamoRepository(settings.policy)
    idempotency_store = DynamoDBPersistenceLayer(table_name=settings.idempotency_table,
                                     boto3_client=boto3.client("dynamodb", region_name=settings.region))
    config = IdempotencyConfig(
        # The key is scoped to the caller and the route: two users cannot collide on one key.
        event_key_jmespath="[sub, route, params, key]",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=24 * 3600,
    )

    def run_once(request: dict[str, Any], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return run()

    guarded = idempotent_function(data_keyword_argument="request", persistence_store=idempotency_store, config=config)(run_once)
    # SigV4 for presigned POST and GET: the SigV2 default is refused by newer regions.
    s3 = boto3.client("s3", region_name=settings.region, config=BotoConfig(signature_version="s3v4"))
    store = store or S3EvidenceStore(s3, settings.evidence_bucket)
    relay = OutboxRelay(repo, timers, publisher)
    service = DisputeService(repo, clock or SystemClock(), settings.policy, relay, store)
    return Container(settings=settings, service=service,
                     verifier=TokenVerifier(settings.auth), idempotent=guarded, idempotency_config=config)


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
