"""Bad input: fuzz the Lambda handler and `keyfix handle`, and the key policies keyfix meets.

Every generated case must end in either a report valid against report.schema.json or a clear
error (the handler returns {"schema": "keyfix.error/1", "error": ...}; `keyfix handle` exits 2
with a message on stderr and nothing on stdout) - never an unhandled exception, never exit 1,
never the last-resort net (tests.support.lambda_harness) - and keyfix makes no AWS write (every
call its clients make is counted). Every case's outcome is counted; the last test checks the
totals add up.

Events: each trigger's sample (events/*.json) with values replaced by hostile ones (huge
strings, unicode, control characters, wrong types, nulls, nested junk, ARNs with injection-
looking text), keys deleted, truncated JSON texts, wrong top-level types.

Key policies: hypothesis-generated malformed / oversized / unusual-but-valid policies are put
on the key of a seed-A1 group, and the A1 event runs in apply mode: no exception, a valid
report, and a write only ever ADDS the fix's statements (nothing the policy had is lost).
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.gateway_hooks import WriteCounter, announce
from tests.support.lambda_harness import ASG_ACCOUNT, Outcomes, aws, check_cli, cli, handle, outcome_of  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events").glob("*.json"))
TEMPLATES = {p.name: json.loads(p.read_text()) for p in EVENTS}
A1_EVENT = "asg-launch-cancelled-a1.json"

CASES: dict[str, int] = {}
# What every case ended in, per kind ("report" or "error"); a crash or a net hit fails its test.
RESULTS = Outcomes()
OUTCOMES = {"written": 0, "undetermined": 0, "refused": 0}  # what the key-policy fuzz led to


@pytest.fixture(scope="module", autouse=True)
def _announce_counts(request: pytest.FixtureRequest):
    yield
    if CASES:
        detail = ", ".join(f"{k} {v} {dict(RESULTS[k])}" for k, v in sorted(CASES.items()))
        announce(request, f"test_fuzz_handler: {sum(CASES.values())} fuzz cases run ({detail}); "
                          f"key-policy outcomes {OUTCOMES}")


def count(kind: str) -> None:
    CASES[kind] = CASES.get(kind, 0) + 1


def record(kind: str, outcome: str) -> str:
    RESULTS.add(kind, outcome)
    return outcome


# ---- hostile values -------------------------------------------------------------------------------

INJECTIONS = [
    'arn:aws:iam::111122223333:role/x"},{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}',
    "arn:aws:kms:us-east-1:111122223333:key/../../*",
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'; aws kms schedule-key-deletion",
    "arn:aws:iam::111122223333:role/$(curl http://127.0.0.1:1/x)",
    "arn:aws:iam::*:root", "arn:aws:iam::111122223333:root", "*", "arn:*", "arn:aws:kms:*:*:key/*",
    "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling\n",
    "alias/aws/ebs", "alias/../../x", "{{7*7}}", "${jndi:ldap://127.0.0.1/a}", "%s%s%n", "\u202eedoc",
    "AWSServiceRoleForAutoScaling", "autoscaling.amazonaws.com", "i-0a1b2c3d4e5f6a7b8", "web-asg",
    "Client.InvalidKMSKey.InvalidState Client.InternalError", "\ud800", "a\x00b", "\x1b[31mred",
]
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "So", "Lo", "Mn"]), max_size=30),
    st.sampled_from(INJECTIONS),
    st.sampled_from(["x" * 70_000, "arn:aws:kms:us-east-1:111122223333:key/" + "k" * 5000, "\u00e9" * 20_000]),
)
_junk = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                     max_leaves=12)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def hostile_event(draw) -> dict:
    """A trigger's sample with some values replaced by junk, or some keys removed."""
    name = draw(st.sampled_from(sorted(TEMPLATES)))
    event = copy.deepcopy(TEMPLATES[name])
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(event)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = event
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.integers(0, 4)) == 0 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_junk)
    return event


# ---- the handler -----------------------------------------------------------------------------------

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])


@settings(FUZZ, max_examples=150)
@given(event=hostile_event())
def test_handler_survives_hostile_values(aws: WriteCounter, event: dict):
    count("handler: hostile values")
    record("handler: hostile values", outcome_of(handle(event)))
    assert aws.writes == []


@settings(FUZZ, max_examples=25)
@given(event=st.one_of(_junk, st.lists(st.sampled_from(list(TEMPLATES.values())), min_size=1, max_size=2),
                       st.just(json.dumps(TEMPLATES[A1_EVENT]))))
def test_handler_survives_wrong_top_level_types(aws: WriteCounter, event: Any):
    if isinstance(event, dict):
        event = [event]  # not an object at top level either way
    count("handler: top-level types")
    result = handle(event)
    assert record("handler: top-level types", outcome_of(result)) == "error"
    assert aws.writes == []


def test_handler_every_sample_event_still_gives_a_report(aws: WriteCounter):
    """The unmutated samples, so the fuzz above cannot pass by erroring on everything."""
    for name, event in TEMPLATES.items():
        count("handler: samples")
        assert record("handler: samples", outcome_of(handle(copy.deepcopy(event)))) == "report", name
    assert aws.writes == []


# ---- keyfix handle ---------------------------------------------------------------------------------


@settings(FUZZ, max_examples=50)
@given(event=hostile_event())
def test_cli_survives_hostile_values(aws: WriteCounter, tmp_path_factory, event: dict):
    count("cli: hostile values")
    # json.dumps escapes every non-ASCII character, lone surrogates included: always a valid file.
    record("cli: hostile values", check_cli(*cli(json.dumps(event).encode(), tmp_path_factory.getbasetemp())))
    assert aws.writes == []


def _json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw.decode("utf-8")), dict)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
        return False


@settings(FUZZ, max_examples=60)
@given(name=st.sampled_from(sorted(TEMPLATES)), data=st.data())
def test_cli_survives_truncated_and_corrupted_json(aws: WriteCounter, tmp_path_factory, name: str, data):
    text = json.dumps(TEMPLATES[name]).encode()
    cut = data.draw(st.integers(0, len(text) - 1), "cut")
    tail = data.draw(st.sampled_from([b"", b"\x00", b"\xff\xfe", b"}", b"]]]", b"\n", b",", b'"'] ), "tail")
    count("cli: truncated json")
    corrupted = text[:cut] + tail
    status, out, err = cli(corrupted, tmp_path_factory.getbasetemp())
    # A cut that still leaves a JSON object (b"{}", or the whole event again when the cut
    # removed only the closing brace that the tail puts back) gets a report; the rest an error.
    expected = "report" if _json_object(corrupted) else "error"
    assert record("cli: truncated json", check_cli(status, out, err)) == expected, (status, out[:200], err[-500:])
    assert aws.writes == []


@pytest.mark.parametrize("text", [b"", b"null", b"[]", b"42", b'"event"', b"true", b"[{}]", b"{" * 100_000,
                                  b"[" * 5000 + b"]" * 5000, b"\xef\xbb\xbf{}", b"\xff\xfe\x00{"])
def test_cli_wrong_top_level_types_and_pathological_texts(aws: WriteCounter, tmp_path, text: bytes):
    count("cli: pathological texts")
    status, out, err = cli(text, tmp_path)
    record("cli: pathological texts", check_cli(status, out, err))
    assert aws.writes == []


# ---- key policies -----------------------------------------------------------------------------------


@pytest.fixture
def a1(aws: WriteCounter, monkeypatch: pytest.MonkeyPatch):
    """Seed A1 in the moto account, keyfix running as a user of it, the key opted in."""
    import moto.kms.responses

    from tests.integration.conftest import build_world
    from tests.support.accounts import Env, build_a1

    # moto's DescribeKey checks the key policy for a Deny and itself raises (AttributeError)
    # on a policy whose Statement is one object rather than a list - which AWS accepts. Let
    # moto skip the check for policies it cannot walk; keyfix still reads them.
    validate = moto.kms.responses.validate_policy

    def tolerant(key: Any, action: str) -> None:
        try:
            validate(key, action)
        except (AttributeError, TypeError):
            return

    monkeypatch.setattr(moto.kms.responses, "validate_policy", tolerant)

    world = build_world(Env())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ["AWS_SECRET_ACCESS_KEY"])
    case = build_a1(world.env)
    kms = world.client("kms", ASG_ACCOUNT)
    kms.tag_resource(KeyId=case.key_arn, Tags=[{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}])
    return kms, case, aws


_arn = st.sampled_from([
    "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/"
    "AWSServiceRoleForAutoScaling", "arn:aws:iam::444455556666:root", "*", "arn:aws:iam::111122223333:role/KeyAdmin",
    "AROAEXAMPLEDELETED0001", "arn:aws:iam::111122223333:user/dev-*", "111122223333"])
_action = st.sampled_from(["kms:*", "kms:Decrypt", "kms:CreateGrant", "kms:Create*", "KMS:CREATEGRANT", "*",
                           "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:Describe*", "iam:PassRole", "kms:"])
_condition = st.one_of(
    st.just({"Bool": {"kms:GrantIsForAWSResource": "true"}}),
    st.just({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com", "kms:CallerAccount": ASG_ACCOUNT}}),
    st.just({"StringNotEqualsIfExists": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/x"}}),
    st.just({"ForAnyValue:StringLike": {"kms:EncryptionContextKeys": ["aws:ebs:*"]}}),
    st.just({"StringEqualsWhenTuesday": {"kms:CallerAccount": ASG_ACCOUNT}}),
    st.just({"Null": {"kms:GranteePrincipal": "false"}}),
    st.just({"NumericLessThan": {"aws:MultiFactorAuthAge": "nope"}}),
    st.dictionaries(st.text(max_size=12), _junk, max_size=2),
)


@st.composite
def statement(draw) -> Any:
    s: dict[str, Any] = {}
    if draw(st.booleans()):
        s["Sid"] = draw(st.one_of(st.text(max_size=20), st.sampled_from(
            ["Enable IAM User Permissions", "keyfix-use-AWSServiceRoleForAutoScaling-2a03acb8",
             "keyfix-grant-AWSServiceRoleForAutoScaling-2a03acb8", ""]), _scalar))
    s["Effect"] = draw(st.sampled_from(["Allow", "Allow", "Deny", "allow", "Maybe", None]))
    principal_key = draw(st.sampled_from(["Principal", "Principal", "NotPrincipal", None]))
    if principal_key:
        s[principal_key] = draw(st.one_of(
            st.just("*"), st.builds(lambda a: {"AWS": a}, _arn), st.builds(lambda a: {"AWS": a}, st.lists(_arn, max_size=3)),
            st.just({"Service": "ec2.amazonaws.com"}), st.just({"CanonicalUser": "abc"}), _junk))
    action_key = draw(st.sampled_from(["Action", "Action", "NotAction", None]))
    if action_key:
        s[action_key] = draw(st.one_of(_action, st.lists(_action, max_size=4), _scalar))
    s[draw(st.sampled_from(["Resource", "Resource", "NotResource"]))] = draw(
        st.one_of(st.just("*"), st.just(["*"]), st.just("arn:aws:kms:*:111122223333:key/*"), _scalar))
    if draw(st.booleans()):
        s["Condition"] = draw(_condition)
    return s if draw(st.integers(0, 15)) else draw(_junk)


ROOT_STATEMENT = {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                  "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}


@st.composite
def key_policy(draw) -> str:
    """Key policy texts KMS could hold: always a JSON object (PutKeyPolicy rejects anything
    else), but otherwise malformed, oversized or unusual. Non-JSON texts: see the test below."""
    kind = draw(st.sampled_from(["statements", "statements", "statements", "single", "oversized", "malformed"]))
    if kind == "malformed":
        return json.dumps(draw(st.one_of(
            st.fixed_dictionaries({"Version": _scalar, "Statement": _junk}),
            st.fixed_dictionaries({"Statement": st.just("Allow everything")}),
            st.fixed_dictionaries({"Version": st.just("2012-10-17"), "Statement": st.lists(_junk, max_size=3)}),
            st.dictionaries(st.text(max_size=10), _junk, max_size=3))))
    statements = [ROOT_STATEMENT] if draw(st.booleans()) else []
    statements += draw(st.lists(statement(), max_size=4))
    policy: dict[str, Any] = {"Version": draw(st.sampled_from(["2012-10-17", "2008-10-17", "2012-10-17"]))}
    if draw(st.booleans()):
        policy["Id"] = draw(st.text(max_size=20))
    if kind == "single" and statements:
        policy["Statement"] = statements[0]
    else:
        policy["Statement"] = statements
    text = json.dumps(policy)
    if kind == "oversized":
        # Just under KMS's 32 KiB: adding keyfix's statements pushes it over.
        pad = 32 * 1024 - len(text) - draw(st.integers(100, 600))
        policy["Statement"] = list(statements) + [{"Sid": "pad", "Effect": "Allow", "Principal": {"AWS": "*"},
                                                   "Action": "kms:Describe*", "Resource": "*",
                                                   "Condition": {"StringEquals": {"aws:PrincipalTag/pad": "p" * max(pad - 200, 0)}}}]
        text = json.dumps(policy)
    return text


def _statements_of(text: str) -> list[Any] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    s = doc.get("Statement", [])
    return [s] if isinstance(s, dict) else (list(s) if isinstance(s, list) else None)


def _run_a1_with_policy(a1, policy: str) -> tuple[dict, str, list]:
    from tests.integration.conftest import load_event

    kms, case, writes = a1
    kms.put_key_policy(KeyId=case.key_arn, PolicyName="default", Policy=policy)
    before_writes = len(writes.calls)
    event = load_event(A1_EVENT)
    event["id"] = str(uuid.uuid4())
    report = handle(event)
    after = kms.get_key_policy(KeyId=case.key_arn, PolicyName="default")["Policy"]
    return report, after, [w for w in writes.calls[before_writes:] if w in set(writes.writes)]


# One policy for each outcome the count test below requires, whatever the generated ones give:
# hypothesis draws strings from constants it finds in the loaded modules, so which outcomes the
# generated policies reach changes with what else ran in the process.
ROOT_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [ROOT_STATEMENT]})  # written (seed A1)
MALFORMED = json.dumps({"Statement": "Allow everything"})  # undetermined
TAG_ALLOW = json.dumps({"Version": "2012-10-17", "Statement": [ROOT_STATEMENT, {  # refused: a project reading
    "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*",
    "Condition": {"StringEquals": {"aws:PrincipalTag/team": "x"}}}]})


@settings(FUZZ, max_examples=30)
@example(policy=ROOT_ONLY)
@example(policy=MALFORMED)
@example(policy=TAG_ALLOW)
@given(policy=key_policy())
def test_key_policies_keyfix_meets_in_apply_mode(a1, policy: str):
    from tests.integration.conftest import load_event

    kms, case, writes = a1
    kms.put_key_policy(KeyId=case.key_arn, PolicyName="default", Policy=policy)
    before_writes = len(writes.calls)
    event = load_event(A1_EVENT)
    event["id"] = str(uuid.uuid4())
    count("key policies")

    report = handle(event)

    assert record("key policies", outcome_of(report)) == "report", report
    after = kms.get_key_policy(KeyId=case.key_arn, PolicyName="default")["Policy"]
    made = [w for w in writes.calls[before_writes:] if w in set(writes.writes)]
    fixes = [f for finding in report["findings"] for f in finding["fixes"]]
    applied = [f for f in fixes if f["status"] == "applied"]
    causes = {f["cause"] for f in report["findings"]}
    OUTCOMES["written"] += after != policy
    OUTCOMES["undetermined"] += "undetermined" in causes
    OUTCOMES["refused"] += any(f["status"] == "refused" for f in fixes)
    if after == policy:
        assert not applied, "a fix reported applied but the policy did not change"
        assert made in ([], [("kms", "PutKeyPolicy"), ("kms", "PutKeyPolicy")]), made  # nothing, or write+restore
        return
    # keyfix wrote: exactly one key-policy fix, and it only ADDED its statements.
    assert made == [("kms", "PutKeyPolicy")], made
    (fix,) = applied
    assert fix["kind"] == "key-policy-statement"
    old, new = _statements_of(policy), _statements_of(after)
    assert old is not None and new is not None, "keyfix wrote over a policy it could not read"
    assert all(s in new for s in old), "a statement was lost"
    assert [s for s in new if s not in old] == fix["document"]
    assert len(after.encode()) <= 32 * 1024
    assert all(str(s.get("Sid", "")).startswith("keyfix-") for s in fix["document"])


def test_case_counts_are_what_the_fuzz_promises():
    """Runs last in this module: the fuzz above ran as many cases as it says (when run with it)."""
    if not CASES:
        pytest.skip("run with the fuzz tests above to count their cases")
    # Every case ended in a report or a clear error, and is counted exactly once.
    assert {kind: RESULTS.total(kind) for kind in CASES if kind in RESULTS.by_kind} == \
        {kind: n for kind, n in CASES.items() if kind in RESULTS.by_kind}
    assert set(RESULTS.by_kind) == set(CASES)
    assert CASES.get("handler: hostile values", 0) >= 100
    if "handler: hostile values" in CASES:  # the fuzz reaches both answers, not only errors
        assert RESULTS["handler: hostile values"]["report"] > 0 and RESULTS["handler: hostile values"]["error"] > 0
    if CASES.get("key policies"):
        assert CASES["key policies"] >= 30
        # The policy fuzz reached every branch it checks: writes, refusals, undetermined.
        assert all(OUTCOMES.values()), OUTCOMES


@pytest.mark.parametrize("text", ["{", "not a policy", "null"])
def test_unparseable_key_policy_is_undetermined_not_a_crash(a1, text: str):
    count("key policies: unparseable")
    report, after, made = _run_a1_with_policy(a1, text)
    record("key policies: unparseable", outcome_of(report))
    assert made == [] and after == text
    assert report["findings"][0]["cause"] == "undetermined"
