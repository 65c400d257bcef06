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
