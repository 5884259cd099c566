"""Checks on the SAM template (template.yaml) and samconfig.toml.

The template is read with a SafeLoader that understands CloudFormation short-form tags.
Besides structural checks, the event patterns are run against sample events with a small
EventBridge matcher (the operators the template uses), and the IAM role is evaluated for
given parameter values (Fn::If resolved) so that mode-dependent permissions are tested as
CloudFormation would deploy them.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"

# ------------------------------------------------------------------ loading


class CfnLoader(yaml.SafeLoader):
    """SafeLoader accepting !Ref, !Sub, !GetAtt, !If, ... (CloudFormation short forms)."""


def _cfn_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=CfnLoader)


@pytest.fixture(scope="module")
def tpl() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(tpl) -> dict[str, Any]:
    return tpl["Resources"]


def of_type(resources: dict[str, Any], *types: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v.get("Type") in types}


def test_loader_understands_short_forms():
    doc = yaml.load("a: !Ref X\nb: !GetAtt R.Arn\nc: !If [C, 1, 2]\nd: !Sub x", Loader=CfnLoader)
    assert doc == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["R", "Arn"]},
        "c": {"Fn::If": ["C", 1, 2]},
        "d": {"Fn::Sub": "x"},
    }


# ------------------------------------------------------------------ condition resolution

ACCOUNT = "111122223333"
REGION = "us-east-1"


class Resolver:
    """Resolves Fn::If / conditions for given parameter values, as CloudFormation would."""

    NO_VALUE = object()

    def __init__(self, template: dict[str, Any], **overrides: str) -> None:
        self.params = {
            name: str(overrides.get(name, spec.get("Default", "")))
            for name, spec in template.get("Parameters", {}).items()
        }
        unknown = set(overrides) - set(self.params)
        assert not unknown, f"unknown parameters {unknown}"
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::StackName": "keyfix",
        }
        self.condition_defs = template.get("Conditions", {})
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = self._cond(self.condition_defs[name])
        return self.conditions[name]

    def _value(self, node: Any) -> Any:
        if isinstance(node, dict) and "Ref" in node:
            ref = node["Ref"]
            if ref in self.params:
                return self.params[ref]
            if ref in self.pseudo:
                return self.pseudo[ref]
        if isinstance(node, (int, float)):
            return str(node)
        return node

    def _cond(self, node: Any) -> bool:
        (fn, args), = node.items()
        if fn == "Fn::Equals":
            a, b = (self._value(x) for x in args)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not self._cond(args[0])
        if fn == "Fn::And":
            return all(self._cond(a) for a in args)
        if fn == "Fn::Or":
            return any(self._cond(a) for a in args)
        if fn == "Condition":
            return self.condition(args)
        raise AssertionError(f"unsupported condition function {fn}")

    def resolve(self, node: Any) -> Any:
        """Prune Fn::If branches and AWS::NoValue; resolve Ref to parameters, Fn::Split
        and Fn::Sub of parameters/pseudo parameters; leave resource references alone."""
        if isinstance(node, list):
            out = [self.resolve(x) for x in node]
            return [x for x in out if x is not self.NO_VALUE]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Fn::If"}:
            cond, yes, no = node["Fn::If"]
            return self.resolve(yes if self.condition(cond) else no)
        if set(node) == {"Ref"}:
            if node["Ref"] == "AWS::NoValue":
                return self.NO_VALUE
            value = self._value(node)
            return value if isinstance(value, str) else node
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            text = node["Fn::Sub"]

            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name in self.params:
                    return self.params[name]
                if name in self.pseudo:
                    return self.pseudo[name]
                return m.group(0)  # resource reference: left as is

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        if set(node) == {"Fn::Split"}:
            sep, source = node["Fn::Split"]
            source = self.resolve(source)
            if isinstance(source, str):
                return source.split(sep)
            return {"Fn::Split": [sep, source]}
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not self.NO_VALUE}


def test_resolver_prunes_if_branches(tpl):
    r = Resolver(tpl, Mode="apply")
    assert r.condition("IsApply") is True
    assert r.resolve([{"Fn::If": ["IsApply", "a", {"Ref": "AWS::NoValue"}]}]) == ["a"]
    r = Resolver(tpl)
    assert r.condition("IsApply") is False
    assert r.resolve([{"Fn::If": ["IsApply", "a", {"Ref": "AWS::NoValue"}]}]) == []


# ------------------------------------------------------------------ function


def test_function_runtime_architecture_tracing(resources):
    fn = resources["KeyfixFunction"]
    assert fn["Type"] == "AWS::Serverless::Function"
    props = fn["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Tracing"] == "Active"
    assert props["CodeUri"] == "src/"
    assert props["Handler"] == "keyfix.handler.lambda_handler"
    assert 10 <= props["Timeout"] <= 900
    assert props["MemorySize"] >= 128
    assert "ReservedConcurrentExecutions" in props


def test_handler_named_by_template_exists(resources):
    module, _, func = resources["KeyfixFunction"]["Properties"]["Handler"].rpartition(".")
    path = ROOT / resources["KeyfixFunction"]["Properties"]["CodeUri"] / (module.replace(".", "/") + ".py")
    assert path.is_file(), f"the template's Handler points at {path}, which does not exist"
    names = {
        node.name
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    assert func in names


def test_async_failures_go_to_the_dead_letter_queue(resources):
    cfg = resources["KeyfixFunction"]["Properties"]["EventInvokeConfig"]
    assert 0 <= cfg["MaximumRetryAttempts"] <= 2
    on_failure = cfg["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    assert on_failure["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert resources["DeadLetterQueue"]["Type"] == "AWS::SQS::Queue"


def test_log_group_is_the_functions_with_retention(resources):
    groups = of_type(resources, "AWS::Logs::LogGroup")
    assert len(groups) == 1
    (props,) = (g["Properties"] for g in groups.values())
    assert props["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${KeyfixFunction}"}
    assert props["RetentionInDays"]


CONTRACT_VARIABLES = {  # shared/contract/README.md, "Configuration"
    "KEYFIX_MODE": {"Ref": "Mode"},
    "KEYFIX_KEY_ALLOWLIST": {"Ref": "KeyAllowlist"},
    "KEYFIX_PRINCIPAL_ALLOWLIST": {"Ref": "PrincipalAllowlist"},
    "KEYFIX_SNS_TOPIC_ARN": {"Ref": "NotificationTopic"},
    "KEYFIX_TABLE_NAME": {"Ref": "KeyfixTable"},
}


# Additions to the contract's configuration (README, "Deploy"), read where they are used.
ADDED_VARIABLES = {
    "KEYFIX_AUDIT_KEY_ARN": ({"Fn::GetAtt": ["AuditMacKey", "Arn"]}, "src/keyfix/store/common.py"),
    "KEYFIX_FOLLOWUP_QUEUE_URL": ({"Ref": "FollowUpQueue"}, "src/keyfix/followup/schedule.py"),
    "KEYFIX_NOTIFY_OWNERS": ({"Ref": "NotifyOwners"}, "src/keyfix/messages/owner.py"),
    "KEYFIX_HTTPS_MESSAGE": ({"Ref": "HttpsMessage"}, "src/keyfix/messages/structure.py"),
    "KEYFIX_SWITCH_PARAMETER": ({"Ref": "RuntimeSwitch"}, "src/keyfix/switch.py"),
    "KEYFIX_HISTORY_RETENTION_DAYS": ({"Ref": "HistoryRetentionDays"}, "src/keyfix/store/findings.py"),
    "KEYFIX_SECURITY_HUB": ({"Ref": "SecurityHub"}, "src/keyfix/securityhub.py"),
}


def test_environment_matches_contract(resources):
    env = resources["KeyfixFunction"]["Properties"]["Environment"]["Variables"]
    keyfix_vars = {k: v for k, v in env.items() if k.startswith("KEYFIX_")}
    assert keyfix_vars == {**CONTRACT_VARIABLES, **{k: v for k, (v, _) in ADDED_VARIABLES.items()}}
    assert env["POWERTOOLS_SERVICE_NAME"] == "keyfix"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "keyfix"
    assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}  # and LoggingConfig: test_template_logging.py
    assert resources["NotificationTopic"]["Type"] == "AWS::SNS::Topic"
    assert resources["KeyfixTable"]["Type"] == "AWS::DynamoDB::Table"


def test_code_reads_the_variables_the_template_sets():
    config = (ROOT / "src" / "keyfix" / "config.py").read_text(encoding="utf-8")
    read = set(re.findall(r"""["'](KEYFIX_[A-Z_]+)["']""", config))
    assert set(CONTRACT_VARIABLES) <= read
    for name, (_, where) in ADDED_VARIABLES.items():
        assert f'"{name}"' in (ROOT / where).read_text(encoding="utf-8"), (name, where)


def test_mode_parameter(tpl):
    mode = tpl["Parameters"]["Mode"]
    assert mode["Default"] == "propose"
    assert sorted(mode["AllowedValues"]) == ["apply", "propose"]
    for name in ("IsApply", "HasEmail", "HasKeyAllowlist", "HasPrincipalAllowlist"):
        assert name in tpl["Conditions"]
    assert Resolver(tpl).condition("IsApply") is False
    assert Resolver(tpl, Mode="apply").condition("IsApply") is True
    assert Resolver(tpl).condition("HasKeyAllowlist") is False
    assert Resolver(tpl, KeyAllowlist="arn:aws:kms:*:1:key/*").condition("HasKeyAllowlist") is True


@pytest.mark.parametrize(
    ("param", "value", "ok"),
    [
        ("KeyAllowlist", "", True),
        ("KeyAllowlist", "arn:aws:kms:*:111122223333:key/*", True),
        ("KeyAllowlist", "arn:aws:kms:us-east-1:111122223333:key/1a2b,arn:aws:kms:*:444455556666:key/*", True),
        ("KeyAllowlist", "arn:aws:kms:*:111122223333:key/*, arn:aws:kms:*:1:key/*", False),
        ("KeyAllowlist", "arn:aws:kms:us-east-1:111122223333:alias/x", False),
        ("KeyAllowlist", "*", False),
        ("PrincipalAllowlist", "", True),
        ("PrincipalAllowlist", "arn:aws:iam::111122223333:role/app-*", True),
        ("PrincipalAllowlist", "arn:aws:iam::111122223333:role/a,arn:aws:iam::111122223333:user/b", True),
        ("PrincipalAllowlist", "*", False),
        ("PrincipalAllowlist", "arn:aws:iam::111122223333:role/a arn:aws:iam::1:user/b", False),
    ],
)
def test_allowlist_parameters_are_validated(tpl, param, value, ok):
    # They are split on "," into IAM Resource elements: no spaces, nothing but ARNs.
    pattern = tpl["Parameters"][param]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is ok


# ------------------------------------------------------------------ event patterns


def _wildcard(pattern: str, value: str) -> bool:
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), value, re.S) is not None


def _leaf(matcher: Any, value: Any, present: bool) -> bool:
    if isinstance(matcher, dict):
        (op, arg), = matcher.items()
        if op == "exists":
            return present is arg
        if not present:
            return False
        if op == "prefix":
            return isinstance(value, str) and value.startswith(arg)
        if op == "suffix":
            return isinstance(value, str) and value.endswith(arg)
        if op == "wildcard":
            return isinstance(value, str) and _wildcard(arg, value)
        if op == "anything-but":
            if isinstance(arg, dict):
                return not _leaf(arg, value, present)
            return value not in (arg if isinstance(arg, list) else [arg])
        raise AssertionError(f"matcher {op} not implemented in this test")
    return present and value == matcher


def event_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """The subset of EventBridge matching the template uses: every field must match;
    list = any of; $or = any of the sub-patterns; absent fields only match exists:false.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html"""
    for key, want in pattern.items():
        if key == "$or":
            if not any(event_matches(sub, event) for sub in want):
                return False
            continue
        present = isinstance(event, dict) and key in event
        got = event.get(key) if present else None
        if isinstance(want, dict):
            if not event_matches(want, got if isinstance(got, dict) else {}):
                return False
            continue
        values = got if isinstance(got, list) else [got]
        if not any(_leaf(m, v, present) for m in want for v in values):
            return False
    return True


def test_matcher_sanity():
    assert event_matches({"a": [{"wildcard": "*x*"}]}, {"a": "1x2"})
    assert not event_matches({"a": [{"wildcard": "*x*"}]}, {"a": "12"})
    assert not event_matches({"a": ["v"]}, {})
    assert event_matches({"a": {"b": [{"exists": False}]}}, {})
    assert not event_matches({"a": [{"anything-but": "v"}]}, {})
    assert event_matches({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"b": "2"})


# The function's EventBridgeRule events (SAM makes each the rule KeyfixFunction<name>, see
# tests/unit/test_template_events.py); the names are keyfix.events.patterns' rule names.
FUNCTION = "KeyfixFunction"
RULES = {
    "AsgLaunchFailureRule",
    "AsgLaunchTerminatedRule",
    "KmsAccessDeniedRule",
    "EbsVolumeFailureRule",
    "Ec2StoppedRule",
    "AsgLaunchSuccessfulRule",
    "KeyChangeRule",
}


def rule_events(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The function's EventBridgeRule events: name -> Properties."""
    events = resources[FUNCTION]["Properties"].get("Events") or {}
    return {name: ev["Properties"] for name, ev in events.items() if ev.get("Type") == "EventBridgeRule"}


def all_event_patterns(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every event pattern in the template: plain rules by logical id, SAM events of any
    function by event name (the names must not clash)."""
    patterns = {
        name: r["Properties"]["EventPattern"]
        for name, r in of_type(resources, "AWS::Events::Rule").items()
    }
    for fn in of_type(resources, "AWS::Serverless::Function").values():
        for ev_name, ev in (fn["Properties"].get("Events") or {}).items():
            if ev.get("Type") in ("EventBridgeRule", "CloudWatchEvent"):
                assert ev_name not in patterns, f"two patterns named {ev_name}"
                patterns[ev_name] = ev["Properties"]["Pattern"]
    return patterns


def test_the_rules_are_the_functions_sam_events_and_nothing_is_hand_written(resources):
    assert set(rule_events(resources)) == RULES
    assert of_type(resources, "AWS::Events::Rule", "AWS::Lambda::Permission") == {}


def test_every_pattern_only_matches_aws_sources(resources):
    patterns = all_event_patterns(resources)
    assert patterns
    for name, pattern in patterns.items():
        sources = pattern.get("source")
        assert isinstance(sources, list) and sources, f"{name} has no source filter"
        for source in sources:
            assert isinstance(source, str) and source.startswith("aws."), (name, source)


def test_cloudtrail_rule_receives_read_only_management_events(resources):
    events = rule_events(resources)
    cloudtrail = {
        name for name, props in events.items()
        if "AWS API Call via CloudTrail" in props["Pattern"].get("detail-type", [])
    }
    # KeyChangeRule matches write calls only, which state ENABLED receives (keyfix.predict.keychange).
    assert cloudtrail == {"KmsAccessDeniedRule", "KeyChangeRule"}
    assert events["KmsAccessDeniedRule"]["State"] == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
    assert events["KeyChangeRule"]["State"] == "ENABLED"


def _asg(detail_type: str, **detail: str) -> dict[str, Any]:
    return {"source": "aws.autoscaling", "detail-type": detail_type, "detail": {"AutoScalingGroupName": "g", **detail}}


KMS_INVALID_STATE = (
    "Instance became unhealthy while waiting for instance to be in InService state. "
    "Termination Reason: Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state"
)
CLIENT_ERROR = (
    "Instance became unhealthy while waiting for instance to be in InService state. "
    "Termination Reason: Client.InternalError: Client error on launch"
)
SERVER_ERROR = (
    "Instance became unhealthy while waiting for instance to be in InService state. "
    "Termination Reason: Server.InternalError: Internal error on launch"
)
VOLUME_LIMIT = (
    "Instance became unhealthy while waiting for instance to be in InService state. "
    "Termination Reason: Client.VolumeLimitExceeded: Volume limit exceeded"
)


def _kms_denied(identity: dict[str, Any], error: str | None = "AccessDenied") -> dict[str, Any]:
    detail: dict[str, Any] = {"eventSource": "kms.amazonaws.com", "eventName": "Decrypt", "userIdentity": identity}
    if error:
        detail["errorCode"] = error
    return {"source": "aws.kms", "detail-type": "AWS API Call via CloudTrail", "detail": detail}


def _assumed(role_arn: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::111122223333:assumed-role/x/y",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role_arn}},
    }


USER = {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/test"}
ASG_SLR = _assumed(
    "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
)


def _ebs(result: str) -> dict[str, Any]:
    return {"source": "aws.ec2", "detail-type": "EBS Volume Notification",
            "detail": {"event": "createVolume", "result": result, "cause": "arn:aws:kms:... is disabled."}}


def _ec2(state: str) -> dict[str, Any]:
    return {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
            "detail": {"instance-id": "i-1", "state": state}}


EVENTS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("launch failed", _asg("EC2 Instance Launch Unsuccessful", StatusCode="Failed", StatusMessage="x"), {"AsgLaunchFailureRule"}),
    ("launch cancelled", _asg("EC2 Instance Launch Unsuccessful", StatusCode="Cancelled", StatusMessage=KMS_INVALID_STATE), {"AsgLaunchFailureRule"}),
    ("terminated, kms in StatusMessage", _asg("EC2 Instance Terminate Successful", StatusMessage=KMS_INVALID_STATE, Cause="At ..."), {"AsgLaunchTerminatedRule"}),
    ("terminated, kms in Cause", _asg("EC2 Instance Terminate Successful", Cause="At ... " + KMS_INVALID_STATE), {"AsgLaunchTerminatedRule"}),
    ("terminated, client error", _asg("EC2 Instance Terminate Successful", StatusMessage=CLIENT_ERROR), {"AsgLaunchTerminatedRule"}),
    ("terminated, server error", _asg("EC2 Instance Terminate Successful", StatusMessage=SERVER_ERROR), set()),
    ("terminated, server error in Cause", _asg("EC2 Instance Terminate Successful", Cause="At ... " + SERVER_ERROR), set()),
    ("terminated, client error in Cause", _asg("EC2 Instance Terminate Successful", Cause="At ... " + CLIENT_ERROR), {"AsgLaunchTerminatedRule"}),
    ("terminated, volume limit", _asg("EC2 Instance Terminate Successful", StatusMessage=VOLUME_LIMIT), set()),
    ("terminated, scale-in", _asg("EC2 Instance Terminate Successful", Cause="At 2024 a user request update of AutoScalingGroup constraints"), set()),
    ("launch successful", _asg("EC2 Instance Launch Successful", StatusMessage=""), {"AsgLaunchSuccessfulRule"}),
    ("kms denied, user", _kms_denied(USER), {"KmsAccessDeniedRule"}),
    ("kms denied exception, asg slr", _kms_denied(ASG_SLR, "AccessDeniedException"), {"KmsAccessDeniedRule"}),
    ("kms denied, other role", _kms_denied(_assumed("arn:aws:iam::111122223333:role/app")), {"KmsAccessDeniedRule"}),
    ("kms denied, aws service", _kms_denied({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}), {"KmsAccessDeniedRule"}),
    ("kms ok", _kms_denied(USER, error=None), set()),
    ("kms other error", _kms_denied(USER, "NotFoundException"), set()),
    ("ebs failed", _ebs("failed"), {"EbsVolumeFailureRule"}),
    ("ebs available", _ebs("available"), set()),
    ("ec2 stopped", _ec2("stopped"), {"Ec2StoppedRule"}),
    ("ec2 terminated", _ec2("terminated"), {"Ec2StoppedRule"}),
    ("ec2 pending", _ec2("pending"), set()),
    ("ec2 running", _ec2("running"), set()),
]


@pytest.mark.parametrize(("label", "event", "expected"), EVENTS, ids=[e[0] for e in EVENTS])
def test_patterns_route_sample_events(resources, label, event, expected):
    patterns = {name: p for name, p in all_event_patterns(resources).items() if name in RULES}
    assert {name for name, p in patterns.items() if event_matches(p, event)} == expected


@pytest.mark.parametrize(("label", "event", "expected"), EVENTS, ids=[e[0] for e in EVENTS])
def test_second_matcher_agrees(resources, label, event, expected):
    # moto's independent implementation of EventBridge matching, as a cross-check of the
    # matcher above.
    models = pytest.importorskip("moto.events.models")
    patterns = {name: p for name, p in all_event_patterns(resources).items() if name in RULES}
    matched = {name for name, p in patterns.items() if models.EventPattern(None, p).matches_event(event)}
    assert matched == expected


def test_keyfix_does_not_trigger_itself(resources):
    # keyfix's own denied KMS calls (e.g. DescribeKey on a foreign key) must not invoke it
    # again: the pattern excludes sessions of a role under the role's IAM path.
    path = resources["KeyfixRole"]["Properties"]["Path"]
    own_role = f"arn:aws:iam::{ACCOUNT}:role{path}keyfix-KeyfixRole-ABCDEF"
    pattern = rule_events(resources)["KmsAccessDeniedRule"]["Pattern"]
    assert not event_matches(pattern, _kms_denied(_assumed(own_role)))
    assert event_matches(pattern, _kms_denied(_assumed(f"arn:aws:iam::{ACCOUNT}:role/other/app")))


# ------------------------------------------------------------------ IAM


def walk_statements(node: Any, ctx: tuple[tuple[str, bool], ...] = ()) -> Iterator[tuple[dict[str, Any], tuple]]:
    """Every policy statement under node, with the Fn::If branches that enclose it."""
    if isinstance(node, list):
        for item in node:
            yield from walk_statements(item, ctx)
    elif isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            cond, yes, no = node["Fn::If"]
            yield from walk_statements(yes, ctx + ((cond, True),))
            yield from walk_statements(no, ctx + ((cond, False),))
            return
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node, ctx
            return
        for value in node.values():
            yield from walk_statements(value, ctx)


def identity_policy_nodes(resources: dict[str, Any]) -> list[Any]:
    nodes: list[Any] = []
    for r in of_type(resources, "AWS::IAM::Role").values():
        nodes.append(r["Properties"].get("Policies", []))
    for r in of_type(resources, "AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy").values():
        nodes.append(r["Properties"]["PolicyDocument"])
    for r in of_type(resources, "AWS::Serverless::Function").values():
        nodes.append(r["Properties"].get("Policies", []))
    return nodes


def as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else [x]


WRITE_VERBS = (
    "Put", "Create", "Delete", "Revoke", "Update", "Attach", "Detach", "Enable", "Disable",
    "Cancel", "Schedule", "Retire", "Replicate", "Import", "Tag", "Untag", "Set", "Add",
    "Remove", "Pass", "Upload", "Reset", "Change", "Rotate",
)


def is_kms_iam_write(action: str) -> bool:
    service, _, name = action.partition(":")
    return service.lower() in ("kms", "iam") and (name == "*" or name.startswith(WRITE_VERBS))


def test_write_classifier():
    assert is_kms_iam_write("kms:PutKeyPolicy") and is_kms_iam_write("iam:CreateServiceLinkedRole")
    assert is_kms_iam_write("kms:RevokeGrant") and is_kms_iam_write("iam:Put*")
    assert not is_kms_iam_write("kms:DescribeKey") and not is_kms_iam_write("dynamodb:PutItem")


def test_no_wildcard_actions_anywhere(resources):
    statements = list(walk_statements(resources))
    assert len(statements) > 10
    for stmt, _ in statements:
        assert "NotAction" not in stmt, stmt
        for action in as_list(stmt["Action"]):
            assert isinstance(action, str)
            assert action != "*", stmt
            assert not re.fullmatch(r"[A-Za-z0-9-]+:\*", action), stmt


def test_kms_and_iam_writes_only_in_apply_mode(resources):
    writes = 0
    for node in identity_policy_nodes(resources):
        for stmt, ctx in walk_statements(node):
            if stmt["Effect"] != "Allow":
                continue
            for action in as_list(stmt["Action"]):
                if is_kms_iam_write(action):
                    writes += 1
                    assert ("IsApply", True) in ctx, f"{action} granted outside Fn::If IsApply"
    assert writes >= 5  # PutKeyPolicy, CreateGrant, RevokeGrant, iam:Put*/Delete*, CreateServiceLinkedRole


def test_write_statements_on_star_have_conditions(resources):
    seen = 0
    for node in identity_policy_nodes(resources):
        for stmt, _ in walk_statements(node):
            if not any(is_kms_iam_write(a) for a in as_list(stmt["Action"])):
                continue
            seen += 1
            for resource in as_list(stmt.get("Resource", [])):
                if resource == "*" or (isinstance(resource, str) and resource.endswith(":*")):
                    assert stmt.get("Condition"), f"write on {resource!r} without a Condition: {stmt}"
    assert seen


def effective_allows(tpl: dict[str, Any], **params: str) -> list[dict[str, Any]]:
    r = Resolver(tpl, **params)
    resolved = r.resolve(identity_policy_nodes(tpl["Resources"]))
    return [s for s, ctx in walk_statements(resolved) if s["Effect"] == "Allow"]


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in as_list(s["Action"])}


def test_propose_mode_has_no_write_permissions(tpl):
    writes = {a for a in actions_of(effective_allows(tpl, Mode="propose",
                                                     KeyAllowlist="arn:aws:kms:*:1:key/*",
                                                     PrincipalAllowlist="arn:aws:iam::1:role/x"))
              if is_kms_iam_write(a)}
    assert writes == set()


READS = {
    "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeLaunchConfigurations", "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeImages", "ec2:DescribeSnapshots", "ec2:DescribeVolumes", "ec2:DescribeInstances",
    "ec2:GetEbsEncryptionByDefault", "ec2:GetEbsDefaultKmsKeyId", "kms:DescribeKey",
    "kms:GetKeyPolicy", "kms:ListGrants", "kms:ListResourceTags", "kms:ListAliases",
    "iam:GetRole", "iam:GetUser", "iam:ListRolePolicies", "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies", "iam:ListUserPolicies", "iam:GetUserPolicy",
    "iam:ListAttachedUserPolicies", "iam:ListGroupsForUser", "iam:ListGroupPolicies",
    "iam:GetGroupPolicy", "iam:ListAttachedGroupPolicies", "iam:GetPolicy", "iam:GetPolicyVersion",
    "iam:ListUserTags", "iam:ListRoleTags", "organizations:DescribeOrganization",
    "cloudtrail:LookupEvents", "sns:Publish", "dynamodb:GetItem", "dynamodb:PutItem",
    "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "xray:PutTraceSegments",
    "xray:PutTelemetryRecords", "sqs:SendMessage", "logs:CreateLogStream", "logs:PutLogEvents",
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",  # the follow-up queue
    "ssm:GetParameter",
}


def test_read_and_runtime_permissions_in_every_mode(tpl):
    for mode in ("propose", "apply"):
        missing = READS - actions_of(effective_allows(tpl, Mode=mode))
        assert not missing, (mode, missing)


def _stmts_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in as_list(s["Action"])]


def test_apply_mode_without_allowlists(tpl):
    allows = effective_allows(tpl, Mode="apply")
    # PutKeyPolicy: only this account's keys carrying the opt-in tag.
    (put,) = _stmts_with(allows, "kms:PutKeyPolicy")
    assert put["Resource"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*"
    assert put["Condition"] == {"StringEquals": {"aws:ResourceTag/keyfix:auto-remediate": "true"}}
    # No inline identity-policy writes without a principal allow-list.
    assert not {a for a in actions_of(allows) if re.fullmatch(r"iam:(Put|Delete)(Role|User)Policy", a)}
    assert "iam:CreateServiceLinkedRole" in actions_of(allows)
    assert "kms:RevokeGrant" in actions_of(allows)


def test_apply_mode_with_allowlists(tpl):
    keys = "arn:aws:kms:*:444455556666:key/*,arn:aws:kms:us-east-1:111122223333:key/abc"
    principals = "arn:aws:iam::111122223333:role/app-*,arn:aws:iam::111122223333:user/ops"
    allows = effective_allows(tpl, Mode="apply", KeyAllowlist=keys, PrincipalAllowlist=principals)
    put_resources = [s["Resource"] for s in _stmts_with(allows, "kms:PutKeyPolicy") if "Condition" not in s]
    assert put_resources == [keys.split(",")]
    for action in ("iam:PutRolePolicy", "iam:PutUserPolicy", "iam:DeleteRolePolicy", "iam:DeleteUserPolicy"):
        (stmt,) = _stmts_with(allows, action)
        assert stmt["Resource"] == principals.split(",")
    (grant,) = _stmts_with(allows, "kms:CreateGrant")
    grantees = grant["Condition"]["StringLike"]["kms:GranteePrincipal"]
    assert set(principals.split(",")) <= set(grantees)


SLRS = {
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling*",
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
}
GRANT_OPERATIONS = {
    "Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant",
    "Encrypt", "GenerateDataKey", "DescribeKey",
}


def test_create_grant_is_confined(tpl):
    (grant,) = _stmts_with(effective_allows(tpl, Mode="apply"), "kms:CreateGrant")
    cond = grant["Condition"]
    assert set(cond["StringLike"]["kms:GranteePrincipal"]) == SLRS
    assert set(cond["ForAllValues:StringEquals"]["kms:GrantOperations"]) == GRANT_OPERATIONS
    # ForAllValues is true for an absent key; Null=false closes that.
    assert cond["Null"] == {"kms:GrantOperations": "false"}


def test_revoke_and_slr_creation_are_conditioned(tpl):
    allows = effective_allows(tpl, Mode="apply")
    (revoke,) = _stmts_with(allows, "kms:RevokeGrant")
    assert revoke["Condition"]["StringEquals"]["kms:CallerAccount"] == ACCOUNT
    (slr,) = _stmts_with(allows, "iam:CreateServiceLinkedRole")
    assert set(slr["Condition"]["StringEquals"]["iam:AWSServiceName"]) == {
        "autoscaling.amazonaws.com", "spot.amazonaws.com",
    }
    assert set(as_list(slr["Resource"])) == SLRS


def test_policy_lockout_check_cannot_be_bypassed(tpl):
    r = Resolver(tpl, Mode="apply")
    resolved = r.resolve(identity_policy_nodes(tpl["Resources"]))
    denies = [s for s, _ in walk_statements(resolved) if s["Effect"] == "Deny"]
    assert any(
        "kms:PutKeyPolicy" in as_list(s["Action"])
        and s["Condition"] == {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}
        for s in denies
    )


# ------------------------------------------------------------------ data and alarms


def test_table_has_ttl_pitr_sse_and_powertools_key(resources):
    props = resources["KeyfixTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_topic_encrypted_with_a_key_cloudwatch_may_use(resources):
    key_ref = resources["NotificationTopic"]["Properties"]["KmsMasterKeyId"]
    assert key_ref != "alias/aws/sns"  # CloudWatch alarms cannot publish to such a topic
    key = resources[key_ref["Ref"]]
    assert key["Type"] == "AWS::KMS::Key"
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s["Effect"] == "Allow" and s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(s["Action"]))
        for s in statements
    )


def test_email_subscription_is_optional(resources):
    subs = of_type(resources, "AWS::SNS::Subscription")
    assert subs and all(s.get("Condition") == "HasEmail" for s in subs.values())


def test_alarms_notify_the_topic(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    by_metric = {(a["Properties"].get("Namespace"), a["Properties"].get("MetricName")): a["Properties"]
                 for a in alarms.values()}
    errors = by_metric[("AWS/Lambda", "Errors")]
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "KeyfixFunction"}}]
    assert errors["Threshold"] == 1 and errors["Period"] == 300
    assert errors["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    dlq = by_metric[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    assert dlq["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}
    for props in (errors, dlq):  # alarms have their own, never-filtered topic (issue #12)
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}] == props["OKActions"]


def test_outputs(tpl):
    assert {"FunctionArn", "TopicArn", "TableName", "DlqUrl", "AuditKeyArn"} <= set(tpl["Outputs"])


# ------------------------------------------------------------------ audit record MAC key


def _audit_key_statements(tpl, **params):
    key = Resolver(tpl, **params).resolve(tpl["Resources"]["AuditMacKey"])
    return key, key["Properties"]["KeyPolicy"]["Statement"]


def test_audit_key_is_an_hmac_key_kept_with_the_table(resources):
    key = resources["AuditMacKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["KeySpec"] == "HMAC_256"
    assert key["Properties"]["KeyUsage"] == "GENERATE_VERIFY_MAC"
    assert "EnableKeyRotation" not in key["Properties"]  # HMAC keys do not support it
    # Records live 400 days in a retained table; the key must outlive a stack deletion too.
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    assert resources["KeyfixTable"]["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("signers", ["", "arn:aws:iam::111122223333:role/oncall,arn:aws:iam::111122223333:user/ops"])
def test_only_keyfix_and_the_named_signers_may_mac_records(tpl, signers):
    _, statements = _audit_key_statements(tpl, AuditSigners=signers)
    root = f"arn:aws:iam::{ACCOUNT}:root"
    assert all(s["Principal"] == {"AWS": root} for s in statements)
    assert all("kms:*" not in as_list(s["Action"]) and "*" not in as_list(s["Action"]) for s in statements)
    (sign,) = [s for s in statements if "kms:GenerateMac" in as_list(s["Action"])]
    assert as_list(sign["Action"]) == ["kms:GenerateMac"]
    expected = [f"arn:aws:iam::{ACCOUNT}:role/keyfix/*", *filter(None, signers.split(","))]
    assert sign["Condition"] == {"ArnLike": {"aws:PrincipalArn": expected}}
    # The administrators manage the key but cannot MAC without the condition above.
    admin = [s for s in statements if "kms:PutKeyPolicy" in as_list(s["Action"])]
    assert admin and not any("kms:GenerateMac" in as_list(s["Action"]) for s in admin)
    assert any(as_list(s["Action"]) == ["kms:VerifyMac"] and "Condition" not in s for s in statements)


def test_keyfix_role_path_is_the_one_the_key_policy_trusts(resources, tpl):
    _, statements = _audit_key_statements(tpl)
    (sign,) = [s for s in statements if "kms:GenerateMac" in as_list(s["Action"])]
    path = resources["KeyfixRole"]["Properties"]["Path"]
    own_role = f"arn:aws:iam::{ACCOUNT}:role{path}keyfix-KeyfixRole-ABCDEF"
    assert any(_wildcard(p, own_role) for p in sign["Condition"]["ArnLike"]["aws:PrincipalArn"])
    assert not any(_wildcard(p, f"arn:aws:iam::{ACCOUNT}:role/app") for p in sign["Condition"]["ArnLike"]["aws:PrincipalArn"])


@pytest.mark.parametrize("mode", ["propose", "apply"])
def test_function_may_mac_and_verify_with_the_audit_key_only(tpl, mode):
    allows = effective_allows(tpl, Mode=mode)
    for action in ("kms:GenerateMac", "kms:VerifyMac"):
        (stmt,) = _stmts_with(allows, action)
        assert stmt["Resource"] == {"Fn::GetAtt": ["AuditMacKey", "Arn"]}
        assert set(as_list(stmt["Action"])) == {"kms:GenerateMac", "kms:VerifyMac"}


@pytest.mark.parametrize(("value", "ok"), [
    ("", True),
    ("arn:aws:iam::111122223333:role/oncall", True),
    ("arn:aws:iam::111122223333:role/a,arn:aws:iam::111122223333:user/b", True),
    ("*", False),
    ("arn:aws:iam::111122223333:role/a, arn:aws:iam::111122223333:role/b", False),
    ("arn:aws:iam::*:role/a", False),
])
def test_audit_signers_parameter_is_validated(tpl, value, ok):
    assert bool(re.fullmatch(tpl["Parameters"]["AuditSigners"]["AllowedPattern"], value)) is ok


def test_serverless_repo_metadata(tpl):
    app = tpl["Metadata"]["AWS::ServerlessRepo::Application"]
    assert app["Name"] == "keyfix"
    assert app["SpdxLicenseId"] == "Apache-2.0"
    assert app["SemanticVersion"] == "0.1.0"


# ------------------------------------------------------------------ samconfig


def test_samconfig():
    cfg = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    assert str(cfg["version"]) == "0.1"
    expected_stack = {"default": "keyfix", "prod": "keyfix-prod"}
    for env, stack in expected_stack.items():
        assert cfg[env]["global"]["parameters"]["stack_name"] == stack
        deploy = cfg[env]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["confirm_changeset"] is True
        assert deploy["resolve_s3"] is True
        assert "s3_bucket" not in deploy
        assert "Mode=propose" in deploy["parameter_overrides"]
    assert cfg["default"]["validate"]["parameters"]["lint"] is True


# ---------------------------------------------------------------- tags (issue #13)

def _taggable(resource_type: str) -> str | None:
    """How the resource type takes tags, from the CloudFormation resource schemas cfn-lint
    ships: "array" ([{Key, Value}]), "object" ({key: value}), or None (no Tags property)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    tags = schema.get("properties", {}).get("Tags")
    return None if tags is None else tags.get("type", "array")


def test_every_taggable_resource_is_tagged_application_keyfix(tpl):
    function_tags = tpl.get("Globals", {}).get("Function", {}).get("Tags", {})
    assert function_tags.get("application") == "keyfix"
    checked, untaggable, missing = 0, 0, []
    for name, resource in tpl["Resources"].items():
        rtype = resource["Type"]
        if rtype == "AWS::Serverless::Function":  # Globals give it (and what SAM makes from it) the tags
            checked += 1
            continue
        kind = _taggable(rtype)
        if kind is None:
            untaggable += 1
            continue
        tags = resource.get("Properties", {}).get("Tags")
        pairs = tags if kind == "object" else {t.get("Key"): t.get("Value") for t in tags or []}
        if not isinstance(pairs, dict) or pairs.get("application") != "keyfix":
            missing.append(name)
        checked += 1
    assert missing == [], f"resources without the tag application=keyfix: {missing}"
    assert checked >= 10 and checked + untaggable == len(tpl["Resources"])


def test_optional_customer_managed_keys_for_table_and_logs(tpl, resources):
    for param in ("TableKmsKeyArn", "LogsKmsKeyArn"):
        assert tpl["Parameters"][param]["Default"] == ""
    sse = resources["KeyfixTable"]["Properties"]["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["KMSMasterKeyId"] == {"Fn::If": ["HasTableKey", {"Ref": "TableKmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    assert resources["KeyfixLogGroup"]["Properties"]["KmsKeyId"] == {"Fn::If": ["HasLogsKey", {"Ref": "LogsKmsKeyArn"}, {"Ref": "AWS::NoValue"}]}


def test_notification_keys_service_statement_is_limited_to_this_account(resources):
    statements = resources["NotificationTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    service = [s for s in statements if "Service" in s.get("Principal", {})]
    assert service and all(s["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"} for s in service)


def test_repository_metadata_has_no_placeholder(tpl):
    app = tpl["Metadata"]["AWS::ServerlessRepo::Application"]
    assert not any("example" in str(v) for v in app.values())
    assert (ROOT / app["LicenseUrl"]).is_file() and (ROOT / app["ReadmeUrl"]).is_file()


def test_every_scanner_suppression_says_why(resources):
    count = 0
    for name, resource in resources.items():
        meta = resource.get("Metadata", {})
        for skip in meta.get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 30, (name, skip)
            count += 1
        ignored = meta.get("cfn-lint", {}).get("config", {}).get("ignore_checks", [])
        count += len(ignored)
    assert count >= 8

