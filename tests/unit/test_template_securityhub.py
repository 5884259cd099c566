"""The template's Security Hub option (keyfix.securityhub): off by default, and when on, exactly
the three calls keyfix makes, each on its own account's product or hub, never on "*"."""

from __future__ import annotations

import pytest

from keyfix.securityhub import ENABLE_ENV
from tests.unit.test_template import actions_of, as_list, effective_allows, load_template

CALLS = {"securityhub:BatchImportFindings", "securityhub:GetFindings", "securityhub:BatchUpdateFindings"}


@pytest.fixture(scope="module")
def tpl():
    return load_template()


def test_the_parameter_is_off_by_default_and_reaches_the_function(tpl):
    param = tpl["Parameters"]["SecurityHub"]
    assert param["Default"] == "false" and param["AllowedValues"] == ["false", "true"]
    env = tpl["Resources"]["KeyfixFunction"]["Properties"]["Environment"]["Variables"]
    assert env[ENABLE_ENV] == {"Ref": "SecurityHub"}


@pytest.mark.parametrize("mode", ["propose", "apply"])
def test_no_security_hub_permission_unless_asked(tpl, mode):
    granted = {a for a in actions_of(effective_allows(tpl, Mode=mode)) if a.startswith("securityhub:")}
    assert granted == set()


@pytest.mark.parametrize("mode", ["propose", "apply"])
def test_when_on_exactly_keyfix_s_calls_on_its_own_product_and_hub(tpl, mode):
    statements = [s for s in effective_allows(tpl, Mode=mode, SecurityHub="true")
                  if any(a.startswith("securityhub:") for a in as_list(s["Action"]))]
    assert {a for s in statements for a in as_list(s["Action"])} == CALLS
    for statement in statements:
        (resource,) = as_list(statement["Resource"])
        if "securityhub:BatchImportFindings" in as_list(statement["Action"]):
            assert as_list(statement["Action"]) == ["securityhub:BatchImportFindings"]
            assert resource == "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"
        else:
            assert resource == "arn:aws:securityhub:us-east-1:111122223333:hub/default"
