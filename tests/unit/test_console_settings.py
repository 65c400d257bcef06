"""A deployed stage's console key and hosted-UI client id are read when the console first needs
them, never when the settings are read: the API's other routes (a cold GET) pay for neither."""
from __future__ import annotations

import pytest

from chalicelib import config
from chalicelib.config import ConsoleSettings, HostedUi

DEPLOYED = {"AWS_LAMBDA_FUNCTION_NAME": "buyer-protection-prod-APIHandler",
            "CONSOLE_SESSION_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:console-AbCdEf",
            "CONSOLE_AUTH_DOMAIN": "https://bp.auth.us-east-1.amazoncognito.com/",
            "CONSOLE_CLIENT_ID_PARAMETER": "/buyer-protection/console/client-id"}


def test_nothing_is_read_with_the_settings_and_each_is_read_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []

    def never(name: str) -> str:
        raise AssertionError(f"{name} read with the settings")

    monkeypatch.setattr(config, "console_session_key", never)
    monkeypatch.setattr(config, "console_client_id", never)
    console = ConsoleSettings.from_env(DEPLOYED, sandbox=False)
    assert (console.session_key, console.hosted_ui) == ("", None)
    def key(secret: str) -> str:
        read.append(secret)
        return "k" * 64

    def client_id(parameter: str) -> str:
        read.append(parameter)
        return "client-1"

    monkeypatch.setattr(config, "console_session_key", key)
    monkeypatch.setattr(config, "console_client_id", client_id)
    assert console.key() == "k" * 64
    assert console.hosted() == HostedUi("https://bp.auth.us-east-1.amazoncognito.com", "client-1")
    assert read == [DEPLOYED["CONSOLE_SESSION_SECRET_ARN"], DEPLOYED["CONSOLE_CLIENT_ID_PARAMETER"]]


def test_given_values_are_used_without_reading_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(name: str) -> str:
        raise AssertionError(f"{name} read although given")

    monkeypatch.setattr(config, "console_session_key", never)
    monkeypatch.setattr(config, "console_client_id", never)
    console = ConsoleSettings.from_env({**DEPLOYED, "CONSOLE_SESSION_KEY": "s" * 48, "CONSOLE_CLIENT_ID": "c-2"},
                                       sandbox=False)
    assert console.key() == "s" * 48 and console.hosted() == HostedUi(
        "https://bp.auth.us-east-1.amazoncognito.com", "c-2")
    assert ConsoleSettings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f"}, sandbox=False).key() == ""  # console off
    assert len(ConsoleSettings.from_env({}, sandbox=False).key()) >= 32  # make dev: its own key
