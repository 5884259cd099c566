"""A change -> the groups it touches (keyfix.predict.keychange), fuzzed on moto.

One simulated account (keyfix.sim.scenarios.fleet.build_mixed: healthy-asg, broken-asg whose
key policy lacks the service-linked role, disabled-asg whose key is disabled, plain-asg
unencrypted). Hypothesis draws key-change events naming the fleet's keys (by ARN, id or
alias), templates (by id or name), groups, the EBS default key, or things that exist nowhere
or are hostile, made by a person or by keyfix's own role, and runs them through
keyfix.pipeline.process_event in apply mode with every key opted in. For each:
- the findings are exactly the broken groups the change touches, computed here from the
  fleet's layout (not from keyfix's resolution): each predicted, each fix proposed with a
  write blocker, the explanation naming who made the change;
- nothing is written (every AWS call is counted: only reads, the notification and the
  table's bookkeeping), and the fleet's key policies, grants and key states stay as built;
- keyfix's own change makes no AWS call at all;
- a malformed event raises EventError; nothing else is ever raised.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import boto3
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyfix.config import Settings
from keyfix.events import EventError
from keyfix.events.keychange import KeyChangeEvent, to_incident
from keyfix.pipeline import process_event
from keyfix.predict.keychange import handle_change
from keyfix.report import Mode, Report
from keyfix.resolve.gateway import AwsGateway
from keyfix.sim.scenarios.fleet import build_mixed
from tests.integration.conftest import REPORT_SCHEMA, load_event
from tests.support.accounts import ASG_ACCOUNT, REGION
from tests.support.gateway_hooks import WriteCounter

KMS = ("PutKeyPolicy", "DisableKey", "ScheduleKeyDeletion", "RevokeGrant", "RetireGrant")
TEMPLATES = ("CreateLaunchTemplateVersion", "ModifyLaunchTemplate")
GROUPS = ("CreateAutoScalingGroup", "UpdateAutoScalingGroup")
EBS_DEFAULT = ("ModifyEbsDefaultKmsKeyId",)
SERVICE = {**{n: "kms" for n in KMS}, **{n: "ec2" for n in TEMPLATES + EBS_DEFAULT},
           **{n: "autoscaling" for n in GROUPS}}
# The fleet's groups that would fail at their next launch, as build_mixed builds them.
BROKEN = {"broken-asg": "slr-not-in-key-policy", "disabled-asg": "key-disabled"}
ALICE = {"type": "IAMUser", "principalId": "AIDAEXAMPLEALICE00001", "arn": f"arn:aws:iam::{ASG_ACCOUNT}:user/alice",
         "accountId": ASG_ACCOUNT, "userName": "alice"}


def keyfix_role(kind: str = "AssumedRole") -> dict[str, Any]:
    role = f"arn:aws:iam::{ASG_ACCOUNT}:role/keyfix/keyfix-KeyfixRole-X"
    return {"type": kind, "principalId": "AROAEXAMPLE:fn", "accountId": ASG_ACCOUNT,
            "arn": f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/keyfix-KeyfixRole-X/fn",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role, "accountId": ASG_ACCOUNT}}}


def state_of(world) -> str:
    """Every customer managed key's policy, grants and state: what a write would change. (The
    simulator creates the AWS managed alias/aws/ebs key when it is first read, as AWS does
    when it is first used: not keyfix's write.)"""
    kms = world.client("kms")
    out = {}
    for key in kms.list_keys()["Keys"]:
        arn = key["KeyArn"]
        meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
        if meta.get("KeyManager") == "AWS":
            continue
        out[arn] = (kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"],
                    sorted(g["GrantId"] for g in kms.list_grants(KeyId=arn)["Grants"]), meta["KeyState"])
    return json.dumps(out, sort_keys=True)


@pytest.fixture
def fleet(world):
    fleet = build_mixed(world.env)
    kms = world.client("kms")
    kms.create_alias(AliasName="alias/broken-ebs", TargetKeyId=fleet.keys["broken"].rsplit("/", 1)[-1])
    return fleet


def targets(fleet) -> dict[str, st.SearchStrategy]:
    """What each kind of change may name, with the group it touches (None: no group)."""
    key_of_group = {"healthy-asg": fleet.keys["healthy"], "broken-asg": fleet.keys["broken"],
                    "disabled-asg": fleet.keys["disabled"]}
    key_refs = []
    for group, arn in key_of_group.items():
        key_refs += [(arn, group), (arn.rsplit("/", 1)[-1], group)]
    key_refs += [("alias/broken-ebs", "broken-asg"), (f"arn:aws:kms:{REGION}:{ASG_ACCOUNT}:alias/broken-ebs", "broken-asg"),
                 (f"arn:aws:kms:{REGION}:{ASG_ACCOUNT}:key/00000000-0000-4000-8000-000000000000", None),
                 (f"arn:aws:kms:{REGION}:444455556666:key/00000000-0000-4000-8000-000000000001", None),
                 (f"arn:aws:kms:eu-west-1:{ASG_ACCOUNT}:key/00000000-0000-4000-8000-000000000002", None),
                 ("alias/nothing", None), ("not a key", None), ("k" * 2048, None), ("\u202e🔑", None)]
    templates = []
    for group, template_id in fleet.templates.items():
        templates += [(template_id, group), (f"{group}-lt", group)]
    templates += [("lt-00000000000000000", None), ("no-such-lt", None), ("x" * 256, None)]
    groups = [(name, name) for name in fleet.groups] + [("no-such-asg", None), ("g" * 255, None), ("ü-asg", None)]
    hostile = st.text(max_size=20).map(lambda t: (t, None))
    return {"kms": st.sampled_from(key_refs) | hostile, "templates": st.sampled_from(templates) | hostile,
            "groups": st.sampled_from(groups) | hostile}


def change_event(name: str, target: str | None, identity: dict[str, Any], in_resources: bool) -> dict[str, Any]:
    raw = load_event("cloudtrail-kms-putkeypolicy-change.json")
    service = SERVICE[name]
    raw["source"] = f"aws.{service}"
    detail = raw["detail"]
    detail.update(eventSource=f"{service}.amazonaws.com", eventName=name, userIdentity=copy.deepcopy(identity),
                  resources=None, requestParameters={})
    if name in KMS:
        detail["requestParameters"] = {"keyId": target}
        if in_resources:  # CloudTrail names the key in resources[] as an ARN (keyfix takes only ARNs there)
            detail["resources"] = [{"accountId": ASG_ACCOUNT, "type": "AWS::KMS::Key", "ARN": target}]
    elif name in TEMPLATES:
        field = "LaunchTemplateId" if (target or "").startswith("lt-") else "LaunchTemplateName"
        detail["requestParameters"] = {f"{name}Request": {field: target}}
    elif name in GROUPS:
        detail["requestParameters"] = {"autoScalingGroupName": target}
    else:
        detail["requestParameters"] = {"KmsKeyId": target}
    return raw


OUTCOMES: Counter[str] = Counter()


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_change_finds_exactly_the_broken_groups_it_touches_and_writes_nothing(world, fleet, data):
    before = state_of(world)
    strategies = targets(fleet)
    name = data.draw(st.sampled_from(KMS + TEMPLATES + GROUPS + EBS_DEFAULT), label="event")
    kind = "kms" if name in KMS else "templates" if name in TEMPLATES else "groups" if name in GROUPS else None
    target, touched = data.draw(strategies[kind], label="target") if kind else (None, None)
    by_keyfix = data.draw(st.sampled_from([False, False, False, True]), label="by keyfix")
    identity = keyfix_role(data.draw(st.sampled_from(["AssumedRole", "FederatedUser"]))) if by_keyfix else ALICE
    raw = change_event(name, target, identity, data.draw(st.booleans(), label="key in resources"))
    session = boto3.session.Session()
    counter = WriteCounter(session)
    settings_ = Settings(mode=Mode.APPLY, key_allowlist=(f"arn:aws:kms:*:{ASG_ACCOUNT}:key/*",),
                         sns_topic_arn=world.topic_arn, table_name=world.table_name)

    try:
        report = process_event(raw, settings_, AwsGateway(session, region=REGION))
    except EventError as exc:  # a target the model will not take (too long for a key id, say)
        assert str(exc) and len(str(exc)) < 5000
        assert counter.calls == []
        OUTCOMES["malformed"] += 1
        return

    result = report.to_dict()
    jsonschema.validate(result, REPORT_SCHEMA)
    assert counter.writes == [] and state_of(world) == before  # nothing written, whatever was asked
    if by_keyfix:
        # The rule's pattern already leaves it out; handed to the code anyway, it is ignored there too.
        assert result["event"]["trigger"] == "unrecognised" and result["findings"] == []
        incident = to_incident(KeyChangeEvent.model_validate(raw))
        report = handle_change(raw, incident, Report(event=report.event, mode=Mode.APPLY), settings_,
                               AwsGateway(session, region=REGION))
        assert report.findings == [] and counter.calls == []  # keyfix's own change: not even a read
        OUTCOMES["keyfix's own"] += 1
        return
    assert result["event"]["trigger"] == "key-change" and result["mode"] == "apply"
    expected = {touched: BROKEN[touched]} if touched in BROKEN else {}
    found = {f["resource"].rsplit("/", 1)[-1]: f["cause"] for f in result["findings"]}
    assert found == expected, (name, target)
    for finding in result["findings"]:
        assert finding["predicted"] is True
        group = finding["resource"].rsplit("/", 1)[-1]
        assert finding["explanation"].startswith(
            f"arn:aws:iam::{ASG_ACCOUNT}:user/alice made {name} at 2025-03-04T02:58:11Z: this change will break "
            f"{group} at its next launch: ")
    for finding in report.findings:
        for fix in finding.fixes:  # proposed, and a write blocker the safety rules refuse
            assert str(fix.status) == "proposed" and fix.reason
            assert any("never reverts a person's change" in why for why in fix.write_blockers)
    OUTCOMES["finds a broken group" if expected else "touches a healthy group" if touched else "touches nothing"] += 1


def test_every_outcome_of_the_mapping_fuzz_was_reached():
    if not OUTCOMES:
        pytest.fail("the property above did not run first")
    print(f"key-change mapping outcomes: {dict(OUTCOMES)}")
    assert {"finds a broken group", "touches a healthy group", "touches nothing", "keyfix's own"} <= set(OUTCOMES)
