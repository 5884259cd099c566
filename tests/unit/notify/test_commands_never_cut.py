"""A proposed command reaches on-call whole or not at all, whatever channel cuts text.

keyfix builds every CLI line from an argv, each value through shlex.quote
(keyfix.remedies.documents.command). A line cut to fit a chat step or an e-mail is no
longer that command: a cut quote leaves the shell waiting, and a cut redirection
(`> keyfix-policy.new.json` shortened to `> keyfix-policy.new....`) leaves the next step,
`aws kms put-key-policy --policy file://keyfix-policy.new.json`, to put whatever stale file
of that name is lying in the directory on this key. The principal's ARN (its IAM path, or
another account's role named in a denial) decides how long the line is.
"""

from __future__ import annotations

import json

from keyfix.messages.chat import STEP_MAX, chat_notification
from keyfix.messages.structure import EMAIL_MAX, fit
from keyfix.notify import SEPARATOR
from keyfix.remedies import documents as docs
from keyfix.report import Cause, Fix, FixKind, FixStatus
from tests.unit.notify.reports import ACCOUNT, KEY, finding, report


def _key_policy_fix(path_length: int) -> Fix:
    principal = f"arn:aws:iam::{ACCOUNT}:role/{'x' * path_length}/dev"
    statements = docs.key_policy_statements(principal, ["kms:Decrypt"], [])
    return Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, ACCOUNT, KEY, statements,
               docs.cli_add_key_policy_statements(KEY, statements))


def test_chat_steps_are_whole_commands_of_the_fix_or_none():
    for path_length in range(300, 480):
        fix = _key_policy_fix(path_length)
        steps = chat_notification(report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix)), "t", "HIGH", {})[
            "content"]["nextSteps"]
        commands = [s[1:-1] for s in steps if s.startswith("`") and s.endswith("`")]
        assert all(c in fix.cli for c in commands), (path_length, [c[-60:] for c in commands])
        # never a later step of a fix without its earlier ones (put-key-policy without its jq)
        assert commands in ([], fix.cli[:len(commands)]), path_length
        assert all(len(s) <= STEP_MAX for s in steps)


def test_an_email_cut_to_fit_never_ends_in_part_of_a_command():
    line = "      $ " + _key_policy_fix(400).cli[1]
    email = "\n".join([line] * (EMAIL_MAX // len(line) + 5))
    for limit_hit in (email, "x" * 200_000):  # the e-mail alone too long; the whole message too long
        message = json.loads(fit("t", json.dumps({"x": limit_hit}), SEPARATOR, email, "s", None))
        shown = message["email"].split("\n")
        assert all(s == line for s in shown if s.startswith("      $ ")), [s[-60:] for s in shown if s != line][:2]
