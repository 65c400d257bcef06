"""A Stripe stage reads its keys from one Secrets Manager secret (moto), once per container; a
missing or malformed secret is a clear error that stops payments only; the template passes the secret's
ARN as a parameter to the paying functions only, and grants them that one secret only."""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.config import STRIPE_SECRET_KEYS, STRIPE_SECRET_VAR, ConfigError, PaymentSettings, stripe_secret
from infra.build import function_ids
from infra.template import cloudformation
from infra.template.functions import PAYS, STRIPE_SECRET_PARAMETER

DEPLOYED = {"AWS_LAMBDA_FUNCTION_NAME": "buyer-protection-prod-APIHandler", "PAYMENT_PROVIDER": "stripe"}


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    from aws_lambda_powertools.utilities.parameters import clear_caches

    clear_caches()
    yield
    clear_caches()


def secret(aws_account: Any, value: str) -> str:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    return str(client.create_secret(Name=f"buyer-protection/stripe-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"])


READS: list[str] = []  # the SecretIds moto was asked for, in order


@pytest.fixture(autouse=True)
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.get_secret_value

    def counting(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        READS.append(secret_id)
        return original(self, secret_id, *args, **kwargs)

    READS.clear()
    monkeypatch.setattr(SecretsManagerBackend, "get_secret_value", counting)
    yield
    READS.clear()


def test_the_keys_come_from_the_secret_when_first_needed_read_once_per_container(aws_account: Any) -> None:
    from aws_lambda_powertools.utilities.parameters import clear_caches

    arn = secret(aws_account, json.dumps({"api_key": "sk_live_1", "webhook_secret": "whsec_1"}))
    settings = PaymentSettings.from_env({**DEPLOYED, STRIPE_SECRET_VAR: arn})
    assert (settings.provider, settings.stripe_secret_id, settings.stripe_api_key) == ("stripe", arn, "")
    assert READS == []  # a container starts without reading it: only a refund or a webhook needs the keys
    assert settings.stripe_keys() == ("sk_live_1", "whsec_1")
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=arn, SecretString=json.dumps({"api_key": "sk_live_2", "webhook_secret": "whsec_2"}))
    again = PaymentSettings.from_env({**DEPLOYED, STRIPE_SECRET_VAR: arn})
    assert again.stripe_keys() == ("sk_live_1", "whsec_1")  # cached: no second read in this container
    assert len(READS) == 1
    assert again.stripe_keys(refresh=True) == ("sk_live_2", "whsec_2")  # Stripe refused the keys: read again
    clear_caches()  # a new container
    assert PaymentSettings.from_env({**DEPLOYED, STRIPE_SECRET_VAR: arn}).stripe_keys()[0] == "sk_live_2"


def test_the_provider_reads_the_secret_on_its_first_use_only(aws_account: Any) -> None:
    from chalicelib.bootstrap import payment_provider
    from chalicelib.ports import InvalidWebhook

    arn = secret(aws_account, json.dumps({"api_key": "sk_live_1", "webhook_secret": "whsec_1"}))
    provider = payment_provider(PaymentSettings.from_env({**DEPLOYED, STRIPE_SECRET_VAR: arn}), lambda notice: None)
    assert READS == []
    with pytest.raises(InvalidWebhook):  # unsigned: refused, after the keys were read to check it
        provider.parse_webhook(b"{}", {})
    assert READS[:1] == [arn]  # (a refused signature may read it again: the keys may have been rotated)


@pytest.mark.parametrize("value, says", [
    ("sk_live_only_the_key", "is not JSON"),
    (json.dumps(["sk_live_1", "whsec_1"]), "must be a JSON object"),
    (json.dumps({"api_key": "sk_live_1"}), "lacks webhook_secret"),
    (json.dumps({"api_key": "", "webhook_secret": 7}), "lacks api_key, webhook_secret"),
])
def test_a_malformed_secret_is_a_clear_error_that_stops_payments_only(aws_account: Any, value: str, says: str) -> None:
    """Timers and every other route keep working (tests/integration/test_payments_over_http.py):
    the refunds stay owed until the secret can be read."""
    arn = secret(aws_account, value)
    settings = PaymentSettings.from_env({**DEPLOYED, STRIPE_SECRET_VAR: arn})
    assert (settings.stripe_api_key, settings.stripe_webhook_secret, settings.stripe_secret_id) == ("", "", arn)
    with pytest.raises(ConfigError) as err:
        settings.stripe_keys()
    assert says in str(err.value) and STRIPE_SECRET_VAR in str(err.value)
    assert "sk_live" not in str(err.value)  # never the secret's content
    with pytest.raises(ConfigError):
        stripe_secret(arn, refresh=True)


def test_a_missing_secret_is_a_clear_error_that_stops_payments_only(aws_account: Any) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:buyer-protection/none-AbCdEf"
    settings = PaymentSettings.from_env({**DEPLOYED, STRIPE_SECRET_VAR: arn})
    with pytest.raises(ConfigError) as err:
        settings.stripe_keys()
    assert f"the secret {arn} cannot be read" in str(err.value)


def test_keys_are_never_in_the_settings_repr(aws_account: Any) -> None:
    arn = secret(aws_account, json.dumps({"api_key": "sk_live_1", "webhook_secret": "whsec_1"}))
    settings = PaymentSettings.from_env({**DEPLOYED, STRIPE_SECRET_VAR: arn})
    assert settings.stripe_keys()[0] == "sk_live_1" and "sk_live_1" not in repr(settings)
    local = PaymentSettings.from_env({"PAYMENT_PROVIDER": "stripe", "STRIPE_API_KEY": "sk_live_1",
                                      "STRIPE_WEBHOOK_SECRET": "whsec_1"})
    assert "sk_live_1" not in repr(local) and "whsec_1" not in repr(local)


def statements(resources: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role = "ApiHandlerRole" if function == "APIHandler" else f"{function}Role"
    return [s for p in resources[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_the_stripe_stage_takes_the_secret_as_a_parameter_and_grants_it_to_the_paying_functions_only(
        aws_account: Any) -> None:
    ids = function_ids()
    assert set(PAYS) < set(ids)
    template = cloudformation("prod", ids)
    assert template["Parameters"]["StripeSecretArn"] == STRIPE_SECRET_PARAMETER
    arn = secret(aws_account, "{}")
    assert re.fullmatch(STRIPE_SECRET_PARAMETER["AllowedPattern"], arn)
    assert not re.fullmatch(STRIPE_SECRET_PARAMETER["AllowedPattern"], "buyer-protection/stripe")
    assert all(key in STRIPE_SECRET_PARAMETER["Description"] for key in STRIPE_SECRET_KEYS)
    resources = template["Resources"]
    for function in ids:
        env = resources[function]["Properties"]["Environment"]["Variables"]
        granted = [s for s in statements(resources, function) if any(a.startswith("secretsmanager:") for a in s["Action"])
                   and {"Ref": "StripeSecretArn"} in s["Resource"]]
        if function in PAYS:
            assert env[STRIPE_SECRET_VAR] == {"Ref": "StripeSecretArn"} and "PAYMENT_PROVIDER" not in env
            # The API function reads the console's session key too, through the same action.
            console = [{"Ref": "ConsoleSessionSecret"}] if function == "APIHandler" else []
            assert granted == [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                                "Resource": console + [{"Ref": "StripeSecretArn"}]}]
        else:
            assert env["PAYMENT_PROVIDER"] == "none" and STRIPE_SECRET_VAR not in env and granted == []


def test_a_simulated_stage_has_no_secret_parameter_and_no_grant() -> None:
    template = cloudformation("dev", function_ids())
    assert "StripeSecretArn" not in template["Parameters"]
    text = json.dumps(template["Resources"])
    assert "StripeSecretArn" not in text and STRIPE_SECRET_VAR not in text
    # The only secret there: the console's session key, read by the API function alone.
    grants = [(f, s["Resource"]) for f in function_ids() for s in statements(template["Resources"], f)
              if "secretsmanager:GetSecretValue" in s["Action"]]
    assert grants == [("APIHandler", [{"Ref": "ConsoleSessionSecret"}])]
