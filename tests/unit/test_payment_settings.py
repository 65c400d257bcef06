"""Payment settings fail closed: a deployed stage never fakes refunds by default."""
from __future__ import annotations

import pytest

from chalicelib.config import ConfigError, PaymentSettings


def test_locally_the_simulated_provider_is_the_default_with_a_secret_nobody_knows() -> None:
    a, b = PaymentSettings.from_env({}), PaymentSettings.from_env({})
    assert a.provider == "simulated" and len(a.simulated_webhook_secret) >= 32
    assert a.simulated_webhook_secret != b.simulated_webhook_secret


def test_a_deployed_stage_must_name_its_payment_provider() -> None:
    with pytest.raises(ConfigError):
        PaymentSettings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "buyer-protection-prod"})
    sandbox = PaymentSettings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f", "PAYMENT_PROVIDER": "simulated",
                                        "SIMULATED_WEBHOOK_SECRET": "s" * 40})
    assert sandbox.simulated_webhook_secret == "s" * 40


def test_stripe_needs_its_keys_and_unknown_providers_are_refused() -> None:
    with pytest.raises(ConfigError):
        PaymentSettings.from_env({"PAYMENT_PROVIDER": "stripe", "STRIPE_API_KEY": "sk_test_x"})
    with pytest.raises(ConfigError):
        PaymentSettings.from_env({"PAYMENT_PROVIDER": "paypal"})
    ok = PaymentSettings.from_env({"PAYMENT_PROVIDER": "stripe", "STRIPE_API_KEY": "sk", "STRIPE_WEBHOOK_SECRET": "wh"})
    assert ok.provider == "stripe"


def test_a_deployed_stripe_stage_without_keys_or_a_secret_refuses_to_start_and_says_what_to_set() -> None:
    with pytest.raises(ConfigError) as err:
        PaymentSettings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f", "PAYMENT_PROVIDER": "stripe"})
    assert "STRIPE_SECRET_ARN" in str(err.value) and "STRIPE_API_KEY" in str(err.value)


def test_keys_in_the_environment_are_used_without_reading_any_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import config

    def no_aws(secret_id: str) -> tuple[str, str]:
        raise AssertionError("no secret is read when both keys are set")

    monkeypatch.setattr(config, "stripe_secret", no_aws)
    ok = PaymentSettings.from_env({"PAYMENT_PROVIDER": "stripe", "STRIPE_API_KEY": "sk", "STRIPE_WEBHOOK_SECRET": "wh",
                                   "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s"})
    assert (ok.stripe_api_key, ok.stripe_webhook_secret) == ("sk", "wh") == ok.stripe_keys(refresh=True)


def test_functions_that_pay_nothing_run_without_any_payment_credentials() -> None:
    from chalicelib.bootstrap import payment_provider
    from chalicelib.domain.money import Money
    from chalicelib.ports import InvalidWebhook, PaymentUnavailable, RefundOrder

    settings = PaymentSettings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f", "PAYMENT_PROVIDER": "none"})
    provider = payment_provider(settings, lambda notice: None)
    with pytest.raises(PaymentUnavailable):  # a refund owed stays in the outbox for a paying function
        provider.refund(RefundOrder("r-1", 1, "o-1", None, Money(100, "USD")))
    with pytest.raises(InvalidWebhook):
        provider.parse_webhook(b"{}", {})


def test_a_sandbox_never_moves_deadlines_with_real_money() -> None:
    from chalicelib.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="SANDBOX"):
        Settings.from_env({"SANDBOX": "true", "PAYMENT_PROVIDER": "stripe", "STRIPE_API_KEY": "sk",
                           "STRIPE_WEBHOOK_SECRET": "wh", "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a",
                           "AUTH_PUBLIC_KEY": "k"})
