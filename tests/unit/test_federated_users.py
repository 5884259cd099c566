"""Federated user sessions (issue #10, section 3).

`federated-user/NAME` is whatever name was passed to GetFederationToken
(https://docs.aws.amazon.com/STS/latest/APIReference/API_GetFederationToken.html); the IAM user
who federated is CloudTrail's sessionContext.sessionIssuer when the record has it
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html),
otherwise unknown. The session policy is never in the event, so a denial it could explain is
`undetermined`; a key policy that denies whatever the session policy says gets a statement naming
the session itself (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#sts-session-principals).

Each case runs the parsed CloudTrail event through the diagnosis on hand-built facts, and the
same event through `keyfix.pipeline.process_event` on moto in apply mode (writes counted).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from keyfix.events import parse
from keyfix.policy import Policy, PolicySet, Request, evaluate
from keyfix.report import Cause, FixKind
from keyfix.resolve.facts import AccessNeed, KeyFacts, PrincipalFacts, Situation

ACCOUNT, REGION = "111122223333", "us-east-1"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
ADMIN_USER = f"arn:aws:iam::{ACCOUNT}:user/admin"  # the IAM user the federated name mimics
BROKER = f"arn:aws:iam::{ACCOUNT}:user/broker"  # the IAM user who really federated
FED_ADMIN = f"arn:aws:sts::{ACCOUNT}:federated-user/admin"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/ec2-operator"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def identity(issuer: dict | None, name: str = "admin") -> dict:
    out: dict[str, Any] = {"type": "FederatedUser", "principalId": f"{ACCOUNT}:{name}",
                           "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/{name}", "accountId": ACCOUNT,
                           "accessKeyId": "ASIAEXAMPLE"}
    if issuer is not None:
        out["sessionContext"] = {"sessionIssuer": issuer,
                                 "attributes": {"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "false"}}
    return out


BROKER_ISSUER = {"type": "IAMUser", "principalId": "AIDAEXAMPLEBROKER", "arn": BROKER, "accountId": ACCOUNT,
                 "userName": "broker"}


def event(user_identity: dict, action: str = "Decrypt") -> dict:
    """A KMS AccessDenied record as EventBridge delivers it
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html)."""
    who = user_identity.get("arn", "someone")
    return {
        "version": "0", "id": f"fed-{action}-{abs(hash(json.dumps(user_identity, sort_keys=True)))}",
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms", "account": ACCOUNT,
        "time": "2026-01-01T00:00:00Z", "region": REGION, "resources": [],
        "detail": {
            "eventVersion": "1.08", "userIdentity": user_identity, "eventTime": "2026-01-01T00:00:00Z",
            "eventSource": "kms.amazonaws.com", "eventName": action, "awsRegion": REGION,
            "sourceIPAddress": "192.0.2.1", "userAgent": "aws-cli/2",
            "errorCode": "AccessDeniedException",
            "errorMessage": f"User: {who} is not authorized to perform: kms:{action} on resource: {KEY}",
            "requestParameters": {"keyId": KEY}, "resources": [{"ARN": KEY, "accountId": ACCOUNT,
                                                                "type": "AWS::KMS::Key"}],
            "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT,
        },
    }


def statement(sid: str, principal: str, actions: list[str], effect: str = "Allow") -> dict:
    return {"Sid": sid, "Effect": effect, "Principal": {"AWS": principal}, "Action": actions, "Resource": "*"}


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# Key policies, each from the KMS key-policy pages:
# https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
ROOT_DELEGATES = policy(statement("Enable IAM User Permissions", ROOT, ["kms:*"]))
NAMES_ADMIN_USER = policy(statement("admins", ADMIN_USER, ["kms:*"]),
                          statement("Operator", OPERATOR, ["kms:Decrypt"]))
NAMES_OTHERS_ONLY = policy(statement("Operator", OPERATOR, ["kms:Decrypt"]))
NAMES_THE_SESSION = policy(statement("Operator", OPERATOR, ["kms:Decrypt"]),
                           statement("Federated", FED_ADMIN, ["kms:Decrypt"]))
DENIES_THE_SESSION = policy(statement("Enable IAM User Permissions", ROOT, ["kms:*"]),
                            statement("NoFederated", FED_ADMIN, ["kms:Decrypt"], effect="Deny"))


# -- parsing ----------------------------------------------------------------------------------


def test_issuer_gives_the_federating_user_and_the_principal_stays_the_session():
    caller = parse(event(identity(BROKER_ISSUER))).caller
    assert (caller.type, caller.arn, caller.session_arn, caller.session_issuer_arn) == (
        "FederatedUser", FED_ADMIN, FED_ADMIN, BROKER)


def test_without_issuer_the_federating_user_is_unknown_never_taken_from_the_name():
    caller = parse(event(identity(None))).caller
    assert (caller.arn, caller.session_arn, caller.session_issuer_arn) == (FED_ADMIN, FED_ADMIN, None)
    assert ADMIN_USER not in (caller.arn, caller.session_arn, caller.session_issuer_arn)


@pytest.mark.parametrize("issuer", [
    {"type": "Role", "arn": OPERATOR},  # roles cannot call GetFederationToken
    {"type": "IAMUser", "arn": "not an arn"},
    {"type": "IAMUser"},
])
def test_an_issuer_that_cannot_have_federated_is_not_trusted(issuer):
    assert parse(event(identity(issuer))).caller.session_issuer_arn is None


def test_root_may_federate():
    # "The sessionIssuer element indicates if the API was called with root or IAM user credentials"
    caller = parse(event(identity({"type": "Root", "arn": ROOT, "accountId": ACCOUNT}))).caller
    assert caller.session_issuer_arn == ROOT


def test_the_resolver_evaluates_the_session_itself():
    from keyfix.resolve.denial import principal_of as _principal_of

    for issuer in (BROKER_ISSUER, None):
        assert _principal_of(parse(event(identity(issuer))).caller) == FED_ADMIN


# -- diagnosis on hand-built facts ---------------------------------------------------------


def situation(raw: dict, key_policy: dict) -> Situation:
    incident = parse(raw)
    facts = PrincipalFacts(FED_ADMIN, "federated-user", ACCOUNT,
                           unreadable=("federated user session: its session policy is not in the event",))
    key = KeyFacts(KEY, ACCOUNT, REGION, state="Enabled", manager="CUSTOMER", policy=key_policy, grants=())
    need = AccessNeed(FED_ADMIN, KEY, (incident.action,), {"kms:CallerAccount": ACCOUNT})
    return Situation(incident, needs=[need], keys={KEY: key}, principals={FED_ADMIN: facts})


def diagnosed(issuer: dict | None, key_policy: dict):
    from keyfix.diagnose import diagnose

    (finding,) = diagnose(situation(event(identity(issuer)), key_policy))
    return finding


def names_in(finding) -> str:
    return json.dumps([{"document": f.document, "cli": f.cli} for f in finding.fixes])


@pytest.mark.parametrize("issuer", [BROKER_ISSUER, None], ids=["issuer", "no-issuer"])
@pytest.mark.parametrize("key_policy", [ROOT_DELEGATES, NAMES_ADMIN_USER], ids=["root-delegates", "names-user-admin"])
def test_a_denial_the_session_policy_could_explain_is_undetermined(issuer, key_policy):
    finding = diagnosed(issuer, key_policy)
    assert finding.cause == Cause.UNDETERMINED
    assert finding.principal == FED_ADMIN
    assert finding.fixes == []
    assert "session policy" in finding.explanation and "federated user session" in finding.explanation
    if issuer:
        assert BROKER in finding.explanation
    else:
        assert "no sessionIssuer" in finding.explanation and "does not take it for an IAM user" in finding.explanation
    assert ADMIN_USER not in finding.explanation


@pytest.mark.parametrize("issuer", [BROKER_ISSUER, None], ids=["issuer", "no-issuer"])
def test_a_key_policy_that_denies_whatever_the_session_policy_says_gets_a_statement_naming_the_session(issuer):
    finding = diagnosed(issuer, NAMES_OTHERS_ONLY)
    assert finding.cause == Cause.PRINCIPAL_NOT_IN_KEY_POLICY
    kinds = [f.kind for f in finding.fixes]
    assert FixKind.IDENTITY_POLICY not in kinds and FixKind.KEY_POLICY_STATEMENT in kinds
    statements = next(f.document for f in finding.fixes if f.kind == FixKind.KEY_POLICY_STATEMENT)
    assert {json.dumps(s["Principal"]) for s in statements} == {json.dumps({"AWS": FED_ADMIN})}
    assert ADMIN_USER not in names_in(finding) and BROKER not in names_in(finding)
    # The statement lets the session in with no session policy in force: a resource policy naming
    # the session is not limited by it (API_GetFederationToken.html).
    fixed = Policy.parse(policy(*NAMES_OTHERS_ONLY["Statement"], *statements), "resource_policy")
    decision = evaluate(Request(FED_ADMIN, "kms:Decrypt", KEY, context={"kms:CallerAccount": ACCOUNT}),
                        PolicySet(resource_policy=fixed))
    assert decision.decision == "Allowed"


def test_a_key_policy_naming_the_session_allows_it():
    assert diagnosed(None, NAMES_THE_SESSION).cause == Cause.NO_MISSING_PERMISSION


def test_an_explicit_deny_of_the_session_decides():
    finding = diagnosed(BROKER_ISSUER, DENIES_THE_SESSION)
    assert finding.cause == Cause.EXPLICIT_DENY
    assert ADMIN_USER not in names_in(finding)


def test_an_unread_key_policy_is_undetermined_for_a_federated_session():
    finding = diagnosed(BROKER_ISSUER, None)
    assert finding.cause == Cause.UNDETERMINED and finding.fixes == []


# -- the whole pipeline on moto, apply mode ----------------------------------------------------


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch):
    """A moto account with IAM user `admin` (the look-alike) and `broker`, and a customer managed
    key opted in to writes (tag keyfix:auto-remediate=true) so only keyfix's rules stop a write."""
    from moto import mock_aws

    from keyfix.sim import moto_gaps
    from tests.support.gateway_hooks import WriteCounter, gateway_session

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "KEYFIX_TABLE_NAME", "KEYFIX_SNS_TOPIC_ARN",
                 "KEYFIX_KEY_ALLOWLIST", "KEYFIX_PRINCIPAL_ALLOWLIST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "MOTO_ACCOUNT_ID": ACCOUNT,
                        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}.items():
        monkeypatch.setenv(name, value)
    logging.getLogger("keyfix").setLevel(logging.WARNING)
    with mock_aws(), moto_gaps.installed():
        import boto3

        iam = boto3.client("iam")
        for user in ("admin", "broker"):
            iam.create_user(UserName=user)
        counter = WriteCounter(gateway_session(monkeypatch))
        yield counter


def run(counter, user_identity: dict, key_policy: dict) -> tuple[Any, dict, dict]:
    import boto3

    from keyfix.config import Mode, Settings
    from keyfix.pipeline import process_event

    kms = boto3.client("kms")
    key_id = kms.create_key(Policy=json.dumps(key_policy),
                            Tags=[{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}])["KeyMetadata"]["KeyId"]
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
    raw = json.loads(json.dumps(event(user_identity)).replace(KEY, arn))
    before = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    users_before = {u: boto3.client("iam").list_user_policies(UserName=u)["PolicyNames"] for u in ("admin", "broker")}
    settings = Settings(mode=Mode.APPLY, key_allowlist=(arn,), principal_allowlist=(f"arn:aws:iam::{ACCOUNT}:user/*",))
    report = process_event(raw, settings)
    after = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    users_after = {u: boto3.client("iam").list_user_policies(UserName=u)["PolicyNames"] for u in ("admin", "broker")}
    assert users_after == users_before  # no identity policy on the look-alike or the broker
    return report.to_dict(), json.loads(before), json.loads(after)


@pytest.mark.parametrize("issuer", [BROKER_ISSUER, None], ids=["issuer", "no-issuer"])
def test_pipeline_undetermined_federated_denial_writes_nothing(account, issuer):
    report, before, after = run(account, identity(issuer), NAMES_ADMIN_USER)
    (finding,) = report["findings"]
    assert finding["cause"] == "undetermined" and finding["fixes"] == []
    assert ADMIN_USER not in finding["explanation"]
    assert after == before
    assert account.writes == []


def test_pipeline_key_policy_denial_never_names_the_look_alike(account):
    report, before, after = run(account, identity(None), NAMES_OTHERS_ONLY)
    (finding,) = report["findings"]
    assert finding["cause"] == "principal-not-in-key-policy"
    assert all(f["kind"] != "identity-policy" for f in finding["fixes"])
    text = json.dumps(report)
    assert ADMIN_USER not in text and BROKER not in text
    # Whatever apply mode did, the key policy gained nothing naming an IAM user.
    added = [s for s in after["Statement"] if s not in before["Statement"]]
    assert all(json.dumps(s["Principal"]) == json.dumps({"AWS": FED_ADMIN}) for s in added)
    assert ("iam", "PutUserPolicy") not in account.writes
