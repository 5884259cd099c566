"""The incident key (issue #9 section 7): one incident never hides another, and a storm of one
failure, or re-deliveries of one event, stay one incident.

Each example of the issue is parsed from the sample events, exactly as the Lambda sees them;
the hypothesis properties generalise over every distinguishing field of every trigger."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix.events import parse
from keyfix.events.incident import Caller, Denial, Incident
from keyfix.idempotency import blanked, cause_class, error_code_in, incident_key
from keyfix.report import Trigger

EVENTS = Path(__file__).resolve().parents[3] / "events"
ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SLR_ARN = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
SLR_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"
CAPACITY = ("We currently do not have sufficient m5.large capacity in the Availability Zone you requested "
            "(us-east-1a). Launching EC2 instance failed. Status Reason: Server.InsufficientInstanceCapacity")


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def key_of(raw: dict, mode: str = "apply") -> dict:
    return incident_key(parse(raw), mode=mode)


def redelivered(raw: dict, n: int) -> dict:
    """The same failure again: a new EventBridge id and time, as a re-delivery or the next
    launch attempt of a storm carries them."""
    again = copy.deepcopy(raw)
    again["id"] = f"00000000-0000-4000-8000-{n:012d}"
    again["time"] = f"2025-03-14T09:{n % 60:02d}:00Z"
    return again


# ---- the first example: a capacity failure, then the same group's KMS failure ------

def capacity_failure_of_web_asg() -> dict:
    raw = event("asg-launch-unsuccessful-not-kms.json")
    raw["detail"]["StatusMessage"] = CAPACITY
    return raw


def test_capacity_then_kms_failure_of_the_same_group_are_two_incidents():
    capacity, kms = capacity_failure_of_web_asg(), event("asg-launch-unsuccessful-a1.json")
    assert parse(capacity).group_name == parse(kms).group_name == "web-asg"
    assert key_of(capacity) != key_of(kms)
    assert cause_class(parse(capacity)) == "not-kms:Server.InsufficientInstanceCapacity"
    assert cause_class(parse(kms)) == "kms:Client.InvalidKMSKey.InvalidState"


def test_volume_limit_and_capacity_failures_of_one_group_are_two_incidents_too():
    limit = event("asg-launch-unsuccessful-not-kms.json")  # Client.VolumeLimitExceeded
    assert key_of(limit) != key_of(capacity_failure_of_web_asg())


def test_a_storm_of_one_group_failure_is_one_incident():
    first = event("asg-launch-unsuccessful-a1.json")
    storm = []
    for n in range(1, 6):
        again = redelivered(first, n)
        instance = f"i-0{n:016x}"
        detail = again["detail"]
        detail.update(ActivityId=f"a1f3c2d4-0b5e-6f7a-8b9c-{n:012d}", RequestId=f"r-{n}", EC2InstanceId=instance,
                      StartTime=f"2025-03-14T09:{n:02d}:05.517Z", Description=(
                          f"Launching a new EC2 instance: {instance}.  Status Reason: {detail['StatusMessage']}"))
        again["resources"][1] = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{instance}"
        storm.append(again)
    assert {json.dumps(key_of(e), sort_keys=True) for e in storm} == {json.dumps(key_of(first), sort_keys=True)}


def test_the_cancelled_and_the_failed_reports_of_one_kms_failure_are_one_incident():
    # Same group, same Termination Reason; only the StatusCode and the wording before it differ.
    assert key_of(event("asg-launch-cancelled-a1.json")) == key_of(event("asg-launch-unsuccessful-a1.json"))


# ---- the second example: a forged SLR denial, then the genuine one ------------------

def slr_denial(identity_changes: dict | None = None, drop: tuple[str, ...] = ()) -> dict:
    raw = event("cloudtrail-kms-accessdenied-slr.json")
    identity = raw["detail"]["userIdentity"]
    for name in drop:
        identity.pop(name)
    identity.update(identity_changes or {})
    return raw


FORGERIES = {
    # A role of the same name in another path, session "AutoScaling": the session ARN is the
    # genuine one's; without sessionContext the role ARN derived from it is the genuine SLR's.
    "lookalike-no-issuer": slr_denial({"principalId": "AROAFORGED0000000001:AutoScaling"},
                                      drop=("sessionContext", "invokedBy")),
    "lookalike-plain-path": slr_denial({"principalId": "AROAFORGED0000000001:AutoScaling", "sessionContext": {
        "sessionIssuer": {"type": "Role", "principalId": "AROAFORGED0000000001", "accountId": ACCOUNT,
                          "arn": f"arn:aws:iam::{ACCOUNT}:role/AWSServiceRoleForAutoScaling",
                          "userName": "AWSServiceRoleForAutoScaling"}}}, drop=("invokedBy",)),
    "genuine-role-forged-invokedby-missing": slr_denial(drop=("invokedBy",)),
    "lookalike-evil-path-with-invokedby": slr_denial({"principalId": "AROAFORGED0000000001:AutoScaling",
                                                      "sessionContext": {"sessionIssuer": {
                                                          "type": "Role", "principalId": "AROAFORGED0000000001",
                                                          "arn": f"arn:aws:iam::{ACCOUNT}:role/evil/"
                                                                 "AWSServiceRoleForAutoScaling",
                                                          "accountId": ACCOUNT}}}),
}


def test_a_forged_slr_denial_never_shares_a_key_with_the_genuine_one():
    genuine = key_of(slr_denial())
    assert parse(FORGERIES["lookalike-no-issuer"]).caller.arn == SLR_ARN  # what the old key was built from
    keys = {name: key_of(raw) for name, raw in FORGERIES.items()}
    for name, key in keys.items():
        assert key != genuine, name
    assert len({json.dumps(k, sort_keys=True) for k in keys.values()}) == len(FORGERIES)


def test_the_genuine_slr_denial_delivered_again_is_one_incident():
    first = slr_denial()
    again = redelivered(first, 7)
    detail = again["detail"]
    detail.update(eventID="11111111-2222-4333-8444-555555555555", requestID="r-2", eventTime="2025-03-14T09:13:00Z")
    # The next launch's volume and instance: grant parameters change with every attempt.
    detail["requestParameters"]["constraints"]["encryptionContextSubset"]["aws:ebs:id"] = "vol-0ffffffffffffffff"
    detail["requestParameters"]["granteePrincipal"] = f"{ACCOUNT}:aws:ec2-infrastructure:i-0fffffffffffffff0"
    assert key_of(again) == key_of(first)


def test_a_denial_of_another_action_or_key_is_another_incident():
    first = slr_denial()
    decrypt = copy.deepcopy(first)
    decrypt["detail"]["eventName"] = "Decrypt"
    other_key = json.loads(json.dumps(first).replace("1234abcd-12ab-34cd-56ef-1234567890ab",
                                                     "0987dcba-09fe-87dc-65ba-ab0987654321"))
    assert len({json.dumps(key_of(e), sort_keys=True) for e in (first, decrypt, other_key)}) == 3


def test_the_same_incident_in_another_mode_is_another_key():
    raw = event("asg-launch-unsuccessful-a1.json")
    assert key_of(raw, "propose") != key_of(raw, "apply")


# ---- EBS and EC2 ------------------------------------------------------------------------------

def test_ebs_failures_are_keyed_on_volume_operation_key_and_stated_key_state():
    disabled = event("ebs-volume-failed-disabled.json")
    pending = event("ebs-volume-failed-pending-deletion.json")
    assert key_of(disabled) != key_of(pending)
    assert cause_class(parse(disabled)) == "kms:Disabled"
    assert key_of(redelivered(disabled, 3)) == key_of(disabled)


def test_an_instance_stopped_and_then_terminated_are_two_incidents():
    stopped = event("ec2-instance-stopped.json")
    terminated = copy.deepcopy(stopped)
    terminated["detail"]["state"] = "terminated"
    assert key_of(stopped) != key_of(terminated)
    assert key_of(redelivered(stopped, 4)) == key_of(stopped)


def test_what_varies_within_a_storm_is_blanked_and_codes_are_found():
    assert blanked("Launching a new EC2 instance: i-0a1b2c3d4e5f6a7b8 at 09:12  in subnet-0a1b2c3d4e5f60718") == \
        "Launching a new EC# instance: <id> at #:# in <id>"
    assert blanked(f"{KEY} is disabled.") == "<arn> is disabled."
    assert error_code_in("Termination Reason: Client.InternalError: Client error on launch") == "Client.InternalError"
    assert error_code_in("InsufficientInstanceCapacity: no m5.large") == "InsufficientInstanceCapacity"
    assert error_code_in("message-text") is None
    assert cause_class(parse(event("asg-launch-unsuccessful-a1.json"))) != cause_class(
        parse(capacity_failure_of_web_asg()))


# ---- properties -------------------------------------------------------------------------------

CALLER_FIELDS = [f.name for f in dataclasses.fields(Caller)]
CODES = ["Client.InternalError", "Client.InvalidKMSKey.InvalidState", "Server.InsufficientInstanceCapacity",
         "Client.VolumeLimitExceeded", "Server.InternalError", "InstanceLimitExceeded", "VcpuLimitExceeded"]
words = st.lists(st.sampled_from(["launch", "failed", "volume", "key", "quota", "zone", "denied", "state"]),
                 min_size=1, max_size=6).map(" ".join)
ids = st.integers(0, 2**40).map(lambda n: f"{n:012x}")
accounts = st.integers(10**11, 10**12 - 1).map(str)
arns = st.builds(lambda a, n: f"arn:aws:iam::{a}:role/{n}", accounts, st.text("abcXYZ/_-", min_size=1, max_size=12))
key_arns = st.lists(ids.map(lambda i: f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{i}"), min_size=0, max_size=3,
                    unique=True).map(tuple)
optional = lambda s: st.none() | s  # noqa: E731


def asg_message(code: str | None, text: str) -> str:
    return f"Instance became unhealthy. Termination Reason: {code}: {text}" if code else text


@st.composite
def callers(draw) -> Caller:
    values = {"type": draw(st.sampled_from(["AssumedRole", "IAMUser", "AWSService", "FederatedUser", "Root"])),
              "arn": draw(optional(arns)), "account": draw(optional(accounts)),
              "session_arn": draw(optional(arns.map(lambda a: a.replace(":iam:", ":sts:")))),
              "principal_id": draw(optional(ids.map(lambda i: f"AROA{i.upper()}"))),
              "invoked_by": draw(optional(st.sampled_from(["autoscaling.amazonaws.com", "ec2.amazonaws.com"]))),
              "session_issuer_arn": draw(optional(arns))}
    return Caller(**{k: v for k, v in values.items() if k in CALLER_FIELDS})


# Per trigger: the Incident fields that distinguish incidents, each with its strategy. The
# ASG reason is drawn as (code, text): the cause class is the code, or the text when none.
DISTINGUISHING = {
    Trigger.ASG_LAUNCH_FAILURE: {"group_name": st.text("abc-xyz", min_size=1, max_size=10),
                                 "kms_related": st.sampled_from([True, False, None]),
                                 "reason": st.tuples(optional(st.sampled_from(CODES)), words)},
    Trigger.EC2_LAUNCH_FAILURE: {"instance_id": ids.map(lambda i: f"i-{i}"),
                                 "instance_state": st.sampled_from(["stopped", "terminated", "shutting-down"])},
    Trigger.EBS_VOLUME_FAILURE: {"volume_id": ids.map(lambda i: f"vol-{i}"),
                                 "ebs_operation": st.sampled_from(["createVolume", "attachVolume", "reattachVolume"]),
                                 "key_arns": key_arns.filter(bool),
                                 "key_state_hint": st.sampled_from(["Disabled", "PendingDeletion", "PendingImport"])},
    Trigger.KMS_ACCESS_DENIED: {"caller": callers(),
                                "action": st.sampled_from(["kms:CreateGrant", "kms:Decrypt",
                                                           "kms:GenerateDataKeyWithoutPlaintext"]),
                                "error_code": st.sampled_from(["AccessDenied", "AccessDeniedException",
                                                               "KMSInvalidStateException", "DisabledException"]),
                                "denial": st.sampled_from(list(Denial)),
                                "key_arns": key_arns.filter(bool)},
}
COMMON = {"account": accounts, "region": st.sampled_from(["us-east-1", "eu-west-1", "ap-south-1"])}


def build(trigger: Trigger, values: dict, event_id: str = "e-1", time: str | None = None, **storm) -> Incident:
    fields = {k: v for k, v in values.items() if k != "reason"}
    if "reason" in values:
        fields["status_message"] = asg_message(*values["reason"])
    return Incident(trigger, event_id, "aws.x", "detail", time=time, **fields, **storm)


def distinct(field: str, a, b) -> bool:
    """Whether two drawn values of `field` are different incidents' values (two reasons
    without a code are the same failure when they read the same once blanked)."""
    if field == "reason":
        (ca, ta), (cb, tb) = a, b
        return ca != cb or (ca is None and blanked(ta) != blanked(tb))
    if field == "key_arns":
        return set(a) != set(b)
    return a != b


@st.composite
def incident_values(draw):
    trigger = draw(st.sampled_from(list(DISTINGUISHING)))
    strategies = {**COMMON, **DISTINGUISHING[trigger]}
    return trigger, strategies, {name: draw(s) for name, s in strategies.items()}


@settings(max_examples=400, deadline=None)
@given(incident_values(), st.data(), st.sampled_from(["propose", "apply"]))
def test_incidents_that_differ_in_any_distinguishing_field_never_share_a_key(drawn, data, mode):
    trigger, strategies, values = drawn
    field = data.draw(st.sampled_from(sorted(strategies)))
    if field == "caller":  # every part of the caller's identity, one at a time
        part = data.draw(st.sampled_from(CALLER_FIELDS))
        other = data.draw(callers())
        changed = dataclasses.replace(values["caller"], **{part: getattr(other, part)})
        if changed == values["caller"]:
            return
        new_value = changed
    else:
        new_value = data.draw(strategies[field].filter(lambda v: distinct(field, values[field], v)))
    first, second = build(trigger, values), build(trigger, {**values, field: new_value})
    assert incident_key(first, mode) != incident_key(second, mode), (field, values[field], new_value)


@settings(max_examples=300, deadline=None)
@given(incident_values(), st.data())
def test_redeliveries_and_storms_of_one_failure_always_share_a_key(drawn, data):
    trigger, _, values = drawn
    storm = {"event_id": data.draw(ids), "time": data.draw(optional(st.just("2025-03-14T10:00:00Z")))}
    if trigger == Trigger.ASG_LAUNCH_FAILURE:  # each launch attempt: its own activity and instance
        storm.update(activity_id=data.draw(ids), instance_id=data.draw(ids.map(lambda i: f"i-{i}")))
    if trigger == Trigger.KMS_ACCESS_DENIED:  # each attempt: its own volume in the context and grantee
        storm.update(encryption_context={"aws:ebs:id": data.draw(ids.map(lambda i: f"vol-{i}"))},
                     grantee_principal=data.draw(ids))
    if "key_arns" in values:  # the event may list its keys in another order, or twice
        values = {**values, "key_arns": tuple(reversed(values["key_arns"])) + values["key_arns"][:1]}
    assert incident_key(build(trigger, values, **storm), "apply") == incident_key(build(trigger, drawn[2]), "apply")
