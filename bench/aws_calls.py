"""Benchmark 3: AWS calls per seed scenario (cost), on in-process moto.

    python bench/aws_calls.py        # one JSON object on stdout

Each scenario is built in a fresh moto (mock_aws plus keyfix's gap layer), with the
seed-case builders (keyfix.sim.scenarios, which tests/support/accounts.py re-exports),
and resolved with keyfix.resolve.resolve through an AwsGateway acting in the Auto Scaling
/ workload account, exactly as tests/unit/resolve does. `gateway.calls` lists every AWS
API call made (the gateway logs each at botocore's before-parameter-build). Then the rest
of the pipeline runs on the same gateway: diagnose, and carry_out in propose mode and,
on a second fresh build with the key opted in (tag keyfix:auto-remediate=true), in apply
mode without a table, to show what the remedy phase adds. Finally the whole invocation
(process_event with the idempotency/audit table and the SNS topic, wired as the handler
wires them) on the scenario's event file from events/, in propose mode.

MINIMUM holds, per scenario, the calls the decision cannot do without; bench/README.md
gives the reasoning for each.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

ACCOUNT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL",
              "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "MOTO_ACCOUNT_ID", "KEYFIX_TABLE_NAME",
              "KEYFIX_SNS_TOPIC_ARN"):
    os.environ.pop(_name, None)
os.environ.update(ACCOUNT_ENV)

KEY_DECISION_READS = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"]

# The calls the decision needs, in order of need (see bench/README.md, "AWS calls").
MINIMUM: dict[str, list[str]] = {
    "A1": ["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeImages",
           "ec2:DescribeSnapshots", *KEY_DECISION_READS, "iam:GetRole"],
    "A2": ["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeImages",
           "kms:DescribeKey", "kms:ListGrants", "iam:GetRole"],
    "B": ["iam:GetUser", "iam:ListUserPolicies", "iam:GetUserPolicy", "iam:ListAttachedUserPolicies",
          "iam:ListGroupsForUser", *KEY_DECISION_READS],
    "C": ["ec2:DescribeInstances", "ec2:DescribeVolumes", *KEY_DECISION_READS, "cloudtrail:LookupEvents",
          "iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:GetPolicy",
          "iam:GetPolicyVersion"],
}

# What apply mode adds to the decision's reads, at least (see bench/README.md): the opt-in
# tag when the key is not allow-listed (the bench opts the key in by tag), then the write's
# own protocol (keyfix.remedies.writers: read under the key's lock, put, read back). B and
# C are refused by the principal rule before any key is looked at: nothing.
APPLY_MINIMUM: dict[str, list[str]] = {
    "A1": ["kms:ListResourceTags", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyPolicy"],
    "A2": ["kms:ListGrants", "kms:CreateGrant"],
    "B": [],
    "C": [],
}

DESCRIPTIONS = {
    "A1": "ASG launch failure; same-account CMK; SLR not in the key policy (asg-launch-failure)",
    "A2": "ASG launch failure; CMK in another account; SLR has no grant (asg-launch-failure)",
    "B": "user dev-alice denied kms:GenerateDataKeyWithoutPlaintext via EBS (kms-access-denied)",
    "C": "role ec2-operator's instance pending -> stopped, Client.InternalError (ec2-launch-failure)",
}


def _names(calls) -> list[str]:
    return [f"{service}:{operation}" for service, operation in calls]


def _build(name: str):
    from keyfix.sim import scenarios as s

    if name == "A1":
        case = s.build_a1()
        return case, case.incident(), case.key_arn, s.ASG_ACCOUNT
    if name == "A2":
        case = s.build_a2()
        return case, case.incident(), case.key_arn, s.KEY_ACCOUNT
    if name == "B":
        case = s.build_b()
        return case, case.denied_incident("kms:GenerateDataKeyWithoutPlaintext"), case.key_arn, s.ASG_ACCOUNT
    if name == "C":
        case = s.build_c()
        return case, case.incident(), case.key_arn, s.ASG_ACCOUNT
    raise ValueError(name)


def _run(name: str, mode: str) -> dict:
    from moto import mock_aws

    from keyfix.config import Settings
    from keyfix.diagnose import diagnose
    from keyfix.remedies.apply import carry_out
    from keyfix.resolve import resolve
    from keyfix.resolve.gateway import AwsGateway
    from keyfix.sim import accounts, moto_gaps
    from keyfix.sim.scenarios import ASG_ACCOUNT, REGION
    from keyfix.store import NullStore

    with moto_gaps.installed(), mock_aws():
        case, incident, key_arn, key_account = _build(name)
        if mode == "apply" and key_account == ASG_ACCOUNT:
            accounts.client("kms", ASG_ACCOUNT, REGION).tag_resource(
                KeyId=key_arn, Tags=[{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}])
        gw = AwsGateway(accounts.session(ASG_ACCOUNT, REGION), account=ASG_ACCOUNT)
        situation = resolve(incident, gw)
        resolve_calls = list(gw.calls)
        findings = diagnose(situation)
        after_diagnose = len(gw.calls)
        settings = Settings(mode=mode)
        carry_out(findings, situation, settings, gw, store=NullStore(), applied_by="bench")
        return {
            "resolve_calls": _names(resolve_calls),
            "diagnose_calls": _names(gw.calls[len(resolve_calls):after_diagnose]),
            "remedy_calls": _names(gw.calls[after_diagnose:]),
            "findings": [{"cause": str(f.cause), "fixes": [(str(x.kind), str(x.status)) for x in f.fixes]}
                         for f in findings],
            "notes": list(situation.notes),
        }


EVENTS = {
    "A1": ("asg-launch-cancelled-a1.json", {}),
    "A2": ("asg-launch-unsuccessful-a2.json", {}),
    "B": ("cloudtrail-kms-accessdenied-b-user-createvolume.json",
          {"arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321": "{key_arn}"}),
    "C": ("ec2-instance-stopped.json", {"i-0c3d4e5f6a7b8c9d0": "{instance_id}"}),
}


class _Context:
    function_name = "keyfix"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:keyfix"
    aws_request_id = "c0ffee00-0000-4000-8000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def _run_invocation(name: str) -> dict:
    """The whole invocation as keyfix.handler.lambda_handler makes it (propose mode, with the
    idempotency/audit table and the SNS topic configured), on the scenario's event file:
    the same gateway, store and idempotency wrapper, built the way the handler builds them."""
    from pathlib import Path

    from moto import mock_aws

    from keyfix.config import Settings
    from keyfix.idempotency import DEFAULT_WINDOW_SECONDS, make_idempotent
    from keyfix.pipeline import process_event
    from keyfix.resolve.gateway import AwsGateway
    from keyfix.sim import accounts, moto_gaps
    from keyfix.sim.scenarios import ASG_ACCOUNT, REGION
    from keyfix.store import store_from_settings

    root = Path(__file__).resolve().parents[1]
    with moto_gaps.installed(), mock_aws():
        case, _incident, _key_arn, _key_account = _build(name)
        ddb = accounts.client("dynamodb", ASG_ACCOUNT, REGION)
        ddb.create_table(TableName="keyfix", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        topic = accounts.client("sns", ASG_ACCOUNT, REGION).create_topic(Name="keyfix")["TopicArn"]
        file, replace = EVENTS[name]
        text = (root / "events" / file).read_text()
        for old, new in replace.items():
            text = text.replace(old, new.format(**vars(case)))
        event = json.loads(text)

        settings = Settings(table_name="keyfix", sns_topic_arn=topic)
        gw = AwsGateway(accounts.session(ASG_ACCOUNT, REGION))
        store = store_from_settings(settings, gw.client)
        once = make_idempotent(lambda act: act(), settings.table_name, DEFAULT_WINDOW_SECONDS,
                               dynamodb_client=gw.client("dynamodb"), lambda_context=_Context())
        report = process_event(event, settings, gw, store=store, once=once, applied_by="bench")
        return {"calls": _names(gw.calls), "causes": [str(f.cause) for f in report.findings]}


def run() -> dict:
    import io
    from contextlib import redirect_stderr

    out = {}
    for name in ("A1", "A2", "B", "C"):
        with redirect_stderr(io.StringIO()):  # NullStore's "no table" line
            propose = _run(name, "propose")
            apply = _run(name, "apply")
            invocation = _run_invocation(name)
        calls = propose["resolve_calls"]
        minimum = MINIMUM[name]
        extra = list((Counter(calls) - Counter(minimum)).elements())
        missing = list((Counter(minimum) - Counter(calls)).elements())
        apply_minimum = APPLY_MINIMUM[name]
        apply_extra = list((Counter(apply["remedy_calls"]) - Counter(apply_minimum)).elements())
        out[name] = {
            "description": DESCRIPTIONS[name],
            "resolve_calls": calls,
            "resolve_count": len(calls),
            "minimum": minimum,
            "minimum_count": len(minimum),
            "ratio_to_minimum": len(calls) / len(minimum),
            "beyond_minimum": extra,
            "minimum_not_made": missing,
            "diagnose_calls": propose["diagnose_calls"],
            "propose_remedy_calls": propose["remedy_calls"],
            "apply_remedy_calls": apply["remedy_calls"],
            "apply_resolve_calls": apply["resolve_calls"],
            "apply_minimum": apply_minimum,
            "apply_beyond_minimum": apply_extra + list(
                (Counter(apply["resolve_calls"]) - Counter(minimum)).elements()),
            "apply_minimum_not_made": list((Counter(apply_minimum) - Counter(apply["remedy_calls"])).elements()),
            "findings_propose": propose["findings"],
            "findings_apply": apply["findings"],
            "notes": propose["notes"],
            "invocation_calls": invocation["calls"],
            "invocation_count": len(invocation["calls"]),
            "invocation_causes": invocation["causes"],
        }
    return out


if __name__ == "__main__":
    json.dump(run(), sys.stdout)
    sys.stdout.write("\n")
