"""One message per protocol: what each kind of subscriber gets, validated per protocol; the
chat format against its documented schema; the subject on-call triages from; the size limit."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings

from keyfix.messages.chat import chat_notification
from keyfix.messages.structure import MESSAGE_MAX_BYTES, SMS_MAX, TooLarge, fit
from keyfix.notify import SEPARATOR, structured_message
from keyfix.render import SUBJECT_MAX, subject
from keyfix.report import Cause, FixKind, FixStatus, Trigger
from tests.unit.notify.reports import KEY, finding, fix, group_arn, report, reports

ROOT = Path(__file__).resolve().parents[3]
CHAT_SCHEMA = json.loads((ROOT / "src/keyfix/schemas/chatbot-custom-notification.schema.json").read_text())
REPORT_SCHEMA = json.loads((ROOT / "src/keyfix/schemas/report.schema.json").read_text())


def variants(r) -> dict[str, str]:
    return json.loads(structured_message(r))


def test_each_protocol_gets_its_own_text():
    r = report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED)))
    v = variants(r)
    assert set(v) == {"default", "email", "sms", "https"}
    # default (SQS, Lambda, HTTP, e-mail-json): readable text, then exactly the report
    text, _, json_part = v["default"].partition(SEPARATOR)
    assert json.loads(json_part) == r.to_dict() and "slr-not-in-key-policy" in text
    # e-mail: readable, the commands, no JSON
    assert SEPARATOR.strip() not in v["email"] and "aws kms put-key-policy" in v["email"]
    assert v["email"].startswith("Severity: HIGH")
    # SMS: one short ASCII line
    assert len(v["sms"]) <= SMS_MAX and "\n" not in v["sms"] and v["sms"].isascii()
    assert v["sms"].startswith("keyfix HIGH: proposed key-policy-statement")
    # HTTPS: the chat format
    chat = json.loads(v["https"])
    jsonschema.validate(chat, CHAT_SCHEMA)
    assert chat["content"]["nextSteps"][0].startswith("`aws kms put-key-policy")


def test_https_subscribers_can_have_the_full_report_instead(monkeypatch):
    monkeypatch.setenv("KEYFIX_HTTPS_MESSAGE", "report")
    r = report(finding(Cause.KEY_DISABLED, fix(FixKind.KEY_STATE)))
    v = variants(r)
    assert json.loads(v["https"].partition(SEPARATOR)[2]) == r.to_dict()


def test_the_schema_file_rejects_what_the_page_forbids():
    good = {"version": "1.0", "source": "custom"}
    jsonschema.validate(good, CHAT_SCHEMA)
    for bad in ({"version": "2.0", "source": "custom"}, {"version": "1.0", "source": "keyfix"},
                {"version": "1.0"}, {**good, "content": {"textType": "html"}},
                {**good, "metadata": {"additionalContext": {"n": 1}}}):
        try:
            jsonschema.validate(bad, CHAT_SCHEMA)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"schema accepted {bad}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports)
def test_every_report_makes_a_valid_message_for_every_protocol(r):
    jsonschema.validate(r.to_dict(), REPORT_SCHEMA)
    message = structured_message(r)
    assert len(message.encode("utf-8")) <= MESSAGE_MAX_BYTES
    v = json.loads(message)
    assert json.loads(v["default"].partition(SEPARATOR)[2]) == r.to_dict()
    jsonschema.validate(json.loads(v["https"]), CHAT_SCHEMA)
    assert len(v["sms"]) <= SMS_MAX and v["sms"].isascii() and "\n" not in v["sms"]
    title = subject(r)
    assert len(title) <= SUBJECT_MAX and all(" " <= c <= "~" for c in title) and title.startswith("[keyfix] ")
    if r.findings and r.findings[0].resource:
        name = r.findings[0].resource.split("autoScalingGroupName/", 1)[1]
        shown = "".join(c if " " <= c <= "~" else "?" for c in name)
        if len(shown) <= SUBJECT_MAX - 40:  # room for "[keyfix] predicted: UNVERIFIED (group )"
            assert f"(group {shown})" in title, title  # the group name is never cut


def test_the_subject_names_only_what_was_applied_and_keeps_the_group():
    def mixed(group: str):
        return report(finding(Cause.SLR_GRANT_MISSING, fix(FixKind.GRANT, FixStatus.APPLIED),
                              fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED),
                              fix(FixKind.IDENTITY_POLICY, FixStatus.PROPOSED), group=group))

    title = subject(mixed("web-asg"))
    assert title == "[keyfix] applied grant for AWSServiceRoleForAutoScaling on key 1234abcd... (group web-asg)"
    medium = "payments-eu-west-1-blue-green-canary"
    title = subject(mixed(medium))  # the key gives way first
    assert title == f"[keyfix] applied grant for AWSServiceRoleForAutoScaling (group {medium})"
    long_group = "payments-eu-west-1-blue-green-canary-autoscaling-group-42"
    title = subject(mixed(long_group))  # then the principal; the group stays whole
    assert title == f"[keyfix] applied grant (group {long_group})"
    assert "key-policy-statement" not in title and len(title) <= SUBJECT_MAX


def test_the_subject_says_failed_unverified_predicted_recovered_and_nothing():
    failed = report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(status=FixStatus.APPLIED), fix(FixKind.GRANT, FixStatus.FAILED)))
    assert subject(failed).startswith("[keyfix] FAILED grant for")
    unverified = report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(status=FixStatus.UNVERIFIED)))
    assert subject(unverified).startswith("[keyfix] UNVERIFIED key-policy-statement")
    predicted = report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(), predicted=True))
    assert subject(predicted).startswith("[keyfix] predicted: proposed key-policy-statement")
    recovered = report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(status=FixStatus.APPLIED)),
                       event=report().event.__class__("e", "keyfix", "recovery", Trigger.RECOVERY))
    assert subject(recovered).startswith("[keyfix] recovered key-policy-statement")
    assert subject(report()) == "[keyfix] asg-launch-failure: nothing to do"


def test_a_group_name_longer_than_the_subject_is_the_only_thing_ever_cut():
    name = "g" * 255
    title = subject(report(finding(Cause.KEY_DISABLED, fix(FixKind.KEY_STATE), group=name)))
    assert len(title) == SUBJECT_MAX and title.startswith("[keyfix] proposed (group ggg") and title.endswith("...")


def test_a_report_too_large_for_sns_keeps_the_json_whole_or_is_refused():
    json_part = json.dumps({"x": "y" * 200_000})
    message = json.loads(fit("t" * 100_000, json_part, SEPARATOR, "t" * 100_000, "s", "{}"))
    assert message["default"].endswith(json_part) and json.loads(message["default"].partition("\n")[2])
    try:
        fit("t", json.dumps({"x": "y" * 300_000}), SEPARATOR, "t", "s", None)
    except TooLarge:
        return
    raise AssertionError("an oversized report was not refused")


def test_chat_links_and_thread():
    r = report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(status=FixStatus.APPLIED)))
    chat = chat_notification(r, subject(r), "LOW", {"run": {}})
    assert "kms/home?region=us-east-1#/kms/keys/1234abcd-12ab-34cd-56ef-1234567890ab" in chat["content"]["description"]
    assert "AutoScalingGroupDetails:id=web-asg" in chat["content"]["description"]
    assert chat["metadata"]["relatedResources"] == [group_arn("web-asg"), KEY]
    again = chat_notification(report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix())), "t", "HIGH", {})
    assert again["metadata"]["threadId"] == chat["metadata"]["threadId"]  # same group and key: one thread
