"""Typed settings, read from the environment once (by bootstrap), validated, never at import."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping

from .domain.policy import Policy

# The configuration variables (docs/RULES.md) -> Policy fields, with their defaults in seconds.
DURATIONS: dict[str, tuple[str, int]] = {
    "SELLER_RESPONSE_SECONDS": ("seller_response", 604800),
    "NEGOTIATION_SECONDS": ("negotiation", 604800),
    "MEDIATION_SLA_SECONDS": ("mediation_sla", 1209600),
    "RETURN_SHIPMENT_SECONDS": ("return_shipment", 864000),
    "RETURN_RECEIPT_SECONDS": ("return_receipt", 864000),
    "DISPUTE_WINDOW_SECONDS": ("dispute_window", 1296000),
    "PROTECTION_SECONDS": ("protection", 5184000),
    "TRACKING_GRACE_SECONDS": ("tracking_grace", 864000),
    "REFUND_SETTLEMENT_SECONDS": ("refund_settlement", 604800),
    "REMINDER_BEFORE_SECONDS": ("reminder_before", 86400),
    "SHIP_BY_SECONDS": ("ship_by", 604800),
    "REFUND_RETRY_SECONDS": ("refund_retry", 3600),
    "CLAIM_LEASE_SECONDS": ("claim_lease", 1800),
    "EARLY_SETTLEMENT_SECONDS": ("early_settlement", 259200),
}
# Seller standing and buyer signals (docs/RULES.md): variable -> (Policy field, default, type).
STANDING: dict[str, tuple[str, float, type]] = {
    "STANDING_WINDOW_DAYS": ("standing_window_days", 90, int),
    "STANDING_LONG_WINDOW_DAYS": ("standing_long_window_days", 365, int),
    "STANDING_MIN_ORDERS": ("standing_min_orders", 25, int),
    "STANDING_AT_RISK_DEFECT_RATE": ("at_risk_defect_rate", 0.02, float),
    "STANDING_AT_RISK_BUYERS": ("at_risk_buyers", 4, int),
    "STANDING_WATCH_DEFECT_RATE": ("watch_defect_rate", 0.01, float),
    "STANDING_WATCH_BUYERS": ("watch_buyers", 2, int),
    "SIGNALS_WINDOW_DAYS": ("signals_window_days", 90, int),
    "FREQUENT_DISPUTER_LOSSES": ("frequent_disputer_losses", 3, int),
}
DEFAULT_SWEEP_INTERVAL_SECONDS = 3600
DEFAULT_TIMER_QUEUE = "buyer-protection-timers"
DEFAULT_EVIDENCE_QUEUE = "buyer-protection-evidence-uploads"
DEFAULT_REFUND_QUEUE = "buyer-protection-refunds"


# The Stripe credentials of a deployed stage: the ARN of one Secrets Manager secret holding JSON
# with these two keys (docs/DEPLOYMENT.md). STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET, when both
# are set, are used instead (local runs).
STRIPE_SECRET_VAR = "STRIPE_SECRET_ARN"
STRIPE_SECRET_KEYS = ("api_key", "webhook_secret")
SECRET_MAX_AGE = 24 * 3600  # read once per container: a rotated key reaches new containers


class ConfigError(ValueError):
    """A configuration variable is missing or malformed."""


@dataclass(frozen=True)
class AuthSettings:
    issuer: str
    audience: str
    jwks_url: str | None = None  # Cognito: https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json
    public_key_pem: str | None = None  # local runs and tests
    # Client-credentials scopes are "<resource_server>/<scope>" (the stack's resource server).
    resource_server: str = "buyer-protection"


@dataclass(frozen=True)
class PaymentSettings:
    """Where refunds are paid. ``simulated`` (the default locally) settles by itself after
    ``simulated_settle_seconds``; ``stripe`` needs its secret key and webhook signing secret;
    ``none`` is for functions that pay nothing (the evidence functions hold no credentials)."""

    provider: str = "simulated"
    simulated_settle_seconds: float = 2.0
    # Signs the simulator's webhooks; random per process unless given (never a known constant).
    simulated_webhook_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    stripe_api_key: str = field(default="", repr=False)
    stripe_webhook_secret: str = field(default="", repr=False)
    stripe_api_base: str | None = None
    # A deployed Stripe stage: the secret the keys are read from, when a refund is first sent or a
    # webhook first verified (``stripe_keys``), never at start: a function's first request pays no
    # Secrets Manager round trip (nor a second boto3 session) for keys it may never use.
    stripe_secret_id: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PaymentSettings:
        provider = env.get("PAYMENT_PROVIDER") or ""
        if not provider:
            if env.get("AWS_LAMBDA_FUNCTION_NAME"):  # deployed: fail closed, never fake refunds by default
                raise ConfigError("PAYMENT_PROVIDER is required in a deployed stage (stripe, or simulated for a sandbox)")
            provider = "simulated"
        if provider not in ("simulated", "stripe", "none"):
            raise ConfigError(f"PAYMENT_PROVIDER must be simulated, stripe or none, got {provider!r}")
        api_key, webhook_secret = env.get("STRIPE_API_KEY", ""), env.get("STRIPE_WEBHOOK_SECRET", "")
        secret_id = ""
        if provider == "stripe" and not (api_key and webhook_secret):
            api_key = webhook_secret = ""
            secret_id = env.get(STRIPE_SECRET_VAR) or ""
            if not secret_id:
                raise ConfigError(f"PAYMENT_PROVIDER=stripe needs {STRIPE_SECRET_VAR} (a Secrets Manager secret) "
                                  "or STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET")
        return cls(provider=provider, simulated_settle_seconds=_seconds(env, "SIMULATED_SETTLE_SECONDS", 2),
                   simulated_webhook_secret=env.get("SIMULATED_WEBHOOK_SECRET") or secrets.token_hex(32),
                   stripe_api_key=api_key, stripe_webhook_secret=webhook_secret,
                   stripe_api_base=env.get("STRIPE_API_BASE") or None, stripe_secret_id=secret_id)

    def stripe_keys(self, refresh: bool = False) -> tuple[str, str]:
        """(API key, webhook signing secret): the ones given in the environment (local runs), or
        read from the stage's secret (cached for the container unless ``refresh``). A missing or
        malformed secret is a ConfigError: it stops payments only, never the other routes."""
        if not self.stripe_secret_id:
            return self.stripe_api_key, self.stripe_webhook_secret
        return stripe_secret(self.stripe_secret_id, refresh)


def stripe_secret(secret_id: str, refresh: bool = False) -> tuple[str, str]:
    """(API key, webhook signing secret) from the Secrets Manager secret ``secret_id``: JSON with
    the keys of STRIPE_SECRET_KEYS. Read through Powertools Parameters, cached for the container
    unless ``refresh`` (Stripe refused the keys: they may have been rotated)."""
    from aws_lambda_powertools.utilities.parameters import get_secret
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

    try:
        value: Any = get_secret(secret_id, transform="json", max_age=SECRET_MAX_AGE, force_fetch=refresh)
    except TransformParameterError as exc:
        raise ConfigError(f"{STRIPE_SECRET_VAR}: the secret {secret_id} is not JSON") from exc
    except GetParameterError as exc:
        raise ConfigError(f"{STRIPE_SECRET_VAR}: the secret {secret_id} cannot be read: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{STRIPE_SECRET_VAR}: the secret {secret_id} must be a JSON object")
    found = [value.get(key) for key in STRIPE_SECRET_KEYS]
    missing = [key for key, v in zip(STRIPE_SECRET_KEYS, found, strict=True) if not isinstance(v, str) or not v]
    if missing:
        raise ConfigError(f"{STRIPE_SECRET_VAR}: the secret {secret_id} lacks {', '.join(missing)}")
    return str(found[0]), str(found[1])


@dataclass(frozen=True)
class HostedUi:
    """The Cognito hosted UI the console signs moderators in with (deployed stages)."""

    domain: str  # https://<prefix>.auth.<region>.amazoncognito.com
    client_id: str  # the console's app client (a public client: PKCE, no secret)

    def logout_url(self, host: str, base: str) -> str:
        from urllib.parse import urlencode

        return f"{self.domain}/logout?" + urlencode({"client_id": self.client_id,
                                                       "logout_uri": f"https://{host}{base}/console/signed-out"})


@dataclass(frozen=True)
class ConsoleSettings:
    """The case team's console. ``session_key`` signs its session cookies: random per process
    unless given (make dev; sessions end when it stops), from a Secrets Manager secret when
    deployed (every container must verify every other's cookies). Without a key the console is off.
    A deployed stage's key and hosted-UI client id are read when the console first needs them
    (``key()``, ``hosted()``), never at start: the API's other routes read neither."""

    session_key: str = field(default="", repr=False)
    session_seconds: int = 8 * 3600  # a working day; never longer than the ID token it came from
    hosted_ui: HostedUi | None = None
    session_secret_id: str = ""  # CONSOLE_SESSION_SECRET_ARN, when no key is given
    auth_domain: str = ""  # with client_id_parameter: the hosted UI, its client id read on first use
    client_id_parameter: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str], sandbox: bool) -> ConsoleSettings:
        key = env.get("CONSOLE_SESSION_KEY") or ""
        secret_id = "" if key else env.get("CONSOLE_SESSION_SECRET_ARN") or ""
        if not key and not secret_id and (sandbox or not env.get("AWS_LAMBDA_FUNCTION_NAME")):
            key = secrets.token_urlsafe(48)  # one process (make dev, tests): its own key
        domain, client = env.get("CONSOLE_AUTH_DOMAIN") or "", env.get("CONSOLE_CLIENT_ID") or ""
        parameter = (env.get("CONSOLE_CLIENT_ID_PARAMETER") or "") if domain and not client else ""
        hosted = HostedUi(domain.rstrip("/"), client) if domain and client else None
        return cls(session_key=key, session_seconds=_seconds(env, "CONSOLE_SESSION_SECONDS", cls.session_seconds),
                   hosted_ui=hosted, session_secret_id=secret_id, auth_domain=domain.rstrip("/") if parameter else "",
                   client_id_parameter=parameter)

    def key(self) -> str:
        """The session key: given, or read from the stage's secret (cached for the container)."""
        if self.session_key or not self.session_secret_id:
            return self.session_key
        return console_session_key(self.session_secret_id)

    def hosted(self) -> HostedUi | None:
        """The hosted UI: given, or with its client id read from the stage's parameter (cached)."""
        if self.hosted_ui is not None or not self.client_id_parameter:
            return self.hosted_ui
        client = console_client_id(self.client_id_parameter)
        return HostedUi(self.auth_domain, client) if client else None


def console_client_id(parameter: str) -> str:
    """The console's Cognito app client id from its SSM parameter (the stack writes it there),
    read through Powertools Parameters once per container."""
    from aws_lambda_powertools.utilities.parameters import get_parameter
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        return str(get_parameter(parameter, max_age=SECRET_MAX_AGE) or "")
    except GetParameterError as exc:
        raise ConfigError(f"CONSOLE_CLIENT_ID_PARAMETER: {parameter} cannot be read: {exc}") from exc


def console_session_key(secret_id: str) -> str:
    """The console's session key: the string in a Secrets Manager secret (the stack generates it),
    read through Powertools Parameters once per container."""
    from aws_lambda_powertools.utilities.parameters import get_secret
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        value: Any = get_secret(secret_id, max_age=SECRET_MAX_AGE)
    except GetParameterError as exc:
        raise ConfigError(f"CONSOLE_SESSION_SECRET_ARN: the secret {secret_id} cannot be read: {exc}") from exc
    return str(value or "")


@dataclass(frozen=True)
class Settings:
    auth: AuthSettings
    policy: Policy = field(default_factory=Policy)
    region: str = "us-east-1"
    orders_table: str = "buyer-protection-orders"
    disputes_table: str = "buyer-protection-disputes"
    messages_table: str = "buyer-protection-messages"
    notes_table: str = "buyer-protection-notes"
    moderation_table: str = "buyer-protection-moderation"
    idempotency_table: str = "buyer-protection-idempotency"
    outbox_table: str = "buyer-protection-outbox"
    evidence_table: str = "buyer-protection-evidence"
    evidence_bucket: str = "buyer-protection-evidence"
    evidence_queue_name: str = DEFAULT_EVIDENCE_QUEUE
    event_bus_name: str = "buyer-protection"
    timer_queue_name: str = DEFAULT_TIMER_QUEUE
    timer_state_machine_arn: str = ""
    # The refunds a commit owes go to this queue; the pay-refunds function sends them (app.py).
    refund_queue_name: str = DEFAULT_REFUND_QUEUE
    refund_queue_url: str = ""  # set by the stack; when empty, looked up by name on first use
    sweep_interval_seconds: int = DEFAULT_SWEEP_INTERVAL_SECONDS
    payments: PaymentSettings = field(default_factory=PaymentSettings)
    sandbox: bool = False  # the /sandbox routes (make dev sets it; never in production)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)

    @property
    def tables(self) -> dict[str, str]:
        """Table name per logical table (see adapters/dynamodb/models.py)."""
        return {"orders": self.orders_table, "disputes": self.disputes_table, "messages": self.messages_table,
                "notes": self.notes_table, "moderation": self.moderation_table,
                "outbox": self.outbox_table, "evidence": self.evidence_table, "idempotency": self.idempotency_table}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        durations: dict[str, Any] = {name: timedelta(seconds=_seconds(env, var, default))
                                     for var, (name, default) in DURATIONS.items()}
        policy = Policy(**durations, **standing_settings(env))
        payments, sandbox = PaymentSettings.from_env(env), (env.get("SANDBOX") or "").lower() == "true"
        if sandbox and payments.provider == "stripe":  # the sandbox moves deadlines: never with real money
            raise ConfigError("SANDBOX=true pays refunds with the simulated provider only, not PAYMENT_PROVIDER=stripe")
        public_key = env.get("AUTH_PUBLIC_KEY")
        key_file = env.get("AUTH_PUBLIC_KEY_FILE")
        if not public_key and key_file:
            try:
                with open(key_file, encoding="utf-8") as fh:
                    public_key = fh.read()
            except OSError as exc:
                raise ConfigError(f"AUTH_PUBLIC_KEY_FILE cannot be read: {exc}") from exc
        jwks_url = env.get("AUTH_JWKS_URL")
        if not public_key and not jwks_url:
            raise ConfigError("set AUTH_JWKS_URL (Cognito) or AUTH_PUBLIC_KEY / AUTH_PUBLIC_KEY_FILE")
        for var in ("AUTH_ISSUER", "AUTH_AUDIENCE"):
            if not env.get(var):
                raise ConfigError(f"{var} is required")
        return cls(
            auth=AuthSettings(issuer=env["AUTH_ISSUER"], audience=env["AUTH_AUDIENCE"], jwks_url=jwks_url,
                              public_key_pem=public_key,
                              resource_server=env.get("AUTH_RESOURCE_SERVER") or AuthSettings.resource_server),
            policy=policy,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            orders_table=env.get("ORDERS_TABLE", cls.orders_table),
            disputes_table=env.get("DISPUTES_TABLE", cls.disputes_table),
            messages_table=env.get("MESSAGES_TABLE", cls.messages_table),
            notes_table=env.get("NOTES_TABLE", cls.notes_table),
            moderation_table=env.get("MODERATION_TABLE", cls.moderation_table),
            idempotency_table=env.get("IDEMPOTENCY_TABLE", cls.idempotency_table),
            outbox_table=env.get("OUTBOX_TABLE", cls.outbox_table),
            evidence_table=env.get("EVIDENCE_TABLE", cls.evidence_table),
            evidence_bucket=env.get("EVIDENCE_BUCKET", cls.evidence_bucket),
            evidence_queue_name=evidence_queue_name(env),
            event_bus_name=env.get("EVENT_BUS_NAME", cls.event_bus_name),
            timer_queue_name=timer_queue_name(env),
            timer_state_machine_arn=env.get("TIMER_STATE_MACHINE_ARN", ""),
            refund_queue_name=refund_queue_name(env),
            refund_queue_url=env.get("REFUND_QUEUE_URL", ""),
            sweep_interval_seconds=_seconds(env, "SWEEP_INTERVAL_SECONDS", DEFAULT_SWEEP_INTERVAL_SECONDS),
            payments=payments,
            sandbox=sandbox,
            console=ConsoleSettings.from_env(env, sandbox),
        )


def standing_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The standing thresholds and windows (positive numbers; the long window at least the short)."""
    out: dict[str, Any] = {}
    for var, (name, default, kind) in STANDING.items():
        raw = env.get(var)
        try:
            value = kind(default if raw is None or raw == "" else raw)
        except ValueError as exc:
            raise ConfigError(f"{var} must be a number, got {raw!r}") from exc
        if value <= 0:
            raise ConfigError(f"{var} must be positive, got {value}")
        out[name] = value
    if out["standing_long_window_days"] < out["standing_window_days"]:
        raise ConfigError("STANDING_LONG_WINDOW_DAYS must be at least STANDING_WINDOW_DAYS")
    return out


def _seconds(env: Mapping[str, str], var: str, default: int) -> int:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{var} must be a whole number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{var} must be positive, got {value}")
    return value


def sweep_rate_minutes(env: Mapping[str, str] | None = None) -> int:
    """The auto-release schedule, in whole minutes (EventBridge's finest rate). Read where the
    schedule is declared, because Chalice fixes the rule when it packages the app."""
    seconds = _seconds(os.environ if env is None else env, "SWEEP_INTERVAL_SECONDS", DEFAULT_SWEEP_INTERVAL_SECONDS)
    return max(1, seconds // 60)


def timer_queue_name(env: Mapping[str, str] | None = None) -> str:
    """The queue the timers report to. Read where the SQS handler is declared too, because
    Chalice fixes the event source when it packages the app (set it per stage at package time)."""
    return (os.environ if env is None else env).get("TIMER_QUEUE_NAME") or DEFAULT_TIMER_QUEUE


def evidence_queue_name(env: Mapping[str, str] | None = None) -> str:
    """The queue S3 reports uploads to (fixed at package time, like the timer queue)."""
    return (os.environ if env is None else env).get("EVIDENCE_QUEUE_NAME") or DEFAULT_EVIDENCE_QUEUE


def refund_queue_name(env: Mapping[str, str] | None = None) -> str:
    """The queue of refunds to send (fixed at package time, like the timer queue)."""
    return (os.environ if env is None else env).get("REFUND_QUEUE_NAME") or DEFAULT_REFUND_QUEUE


def inspection_budget_inputs(env: Mapping[str, str] | None = None) -> tuple[float | None, int | None]:
    """What sizes the evidence inspection's CPU budget (inspection/budget.py ``configured``): an
    explicit INSPECTION_CPU_SECONDS (tests, benches), and the function's memory, which Lambda sets."""
    env = os.environ if env is None else env
    override = env.get("INSPECTION_CPU_SECONDS")
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    return (float(override) if override else None), (int(memory) if memory else None)
