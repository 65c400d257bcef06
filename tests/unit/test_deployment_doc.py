"""docs/DEPLOYMENT.md stays true to the stack: the parameters it asks for, the outputs it names,
what a deleted stack keeps (and how to remove each), and no step that emails a real inbox."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.template import cloudformation

DOC = (Path(__file__).resolve().parents[2] / "docs" / "DEPLOYMENT.md").read_text()
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
# What each kind of kept resource is called in the Teardown table.
KEPT_AS = {"AWS::DynamoDB::Table": "DynamoDB tables", "AWS::S3::Bucket": "evidence bucket",
           "AWS::Cognito::UserPool": "Cognito user pool", "AWS::IAM::Role": "logging role",
           "AWS::ApiGateway::Account": "API Gateway account"}


@pytest.fixture(scope="module")
def prod() -> dict:
    return cloudformation("prod", [])


def section(title: str) -> str:
    found = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.S | re.M)
    assert found, f"no section {title!r}"
    return found.group(1)


def test_the_parameter_table_lists_exactly_the_stacks_parameters(prod: dict) -> None:
    table = set(re.findall(r"^\s*\| `(\w+)` \|", DOC, re.M))
    assert table == set(prod["Parameters"]) == {"AppOrigins", "LogRetentionDays", "StripeSecretArn"}
    assert "StripeSecretArn" not in cloudformation("dev", [])["Parameters"]  # required for prod only
    assert re.search(r"`StripeSecretArn` \| none: \*\*required\*\* for `prod`", DOC)


def test_every_output_the_steps_name_is_one_of_the_stacks(prod: dict) -> None:
    named = set(re.findall(r"`(\w+(?:Id|Arn|URL|Endpoint|Name))`", section("Deployment")))
    assert set(prod["Outputs"]) <= named, set(prod["Outputs"]) - named


def test_creating_a_person_sends_no_invitation_email() -> None:
    creates = [line for line in DOC.splitlines() if "admin-create-user" in line and "aws cognito-idp" in line]
    assert creates and all("--message-action SUPPRESS" in line for line in creates)


def test_teardown_says_what_survives_delete_stack_and_how_to_remove_each(prod: dict) -> None:
    teardown = section("Teardown")
    kept = {r["Type"] for r in prod["Resources"].values() if r.get("DeletionPolicy") == "Retain"}
    assert kept == set(KEPT_AS)
    rows = [line for line in teardown.splitlines() if line.startswith("| ") and not line.startswith("| kept")]
    for kind, words in KEPT_AS.items():
        [row] = [r for r in rows if words in r]
        assert row.count("|") == 4 and row.rsplit("|", 2)[1].strip(), f"{kind}: no way to remove it"
    assert "delete-stack" in teardown and "Redeploying after a failed first deploy" in teardown
    assert "ROLLBACK_COMPLETE" in teardown


def test_the_readme_points_to_the_deployment_page_instead_of_repeating_it() -> None:
    assert "docs/DEPLOYMENT.md" in README
    assert "admin-create-user" not in README and "## Teardown" not in README
