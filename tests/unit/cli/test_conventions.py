"""The conventions a user expects from an AWS command line tool (issue #13): --version,
`handle -`, --region/--profile/--endpoint-url, -q/-v/--log-level, colour and width, and
errors that are the user's named with what to do. Every case counts its outcome."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix import __version__, cli_common, term
from keyfix.cli import main

ROOT = Path(__file__).resolve().parents[3]
EVENT = ROOT / "events" / "unrecognised.json"
A1 = ROOT / "events" / "asg-launch-cancelled-a1.json"


def run(argv, stdin: bytes | None = None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse's --version / --help / usage errors
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def test_version_prints_the_package_version():
    status, out, _ = run(["--version"])
    assert (status, out.strip()) == (0, f"keyfix {__version__}")


def test_handle_reads_the_event_from_standard_input(monkeypatch):
    text = EVENT.read_bytes()
    status, out, err = run(["handle", "-", "--format", "json"], stdin=text, monkeypatch=monkeypatch)
    assert status == 0, err
    from_stdin = json.loads(out)
    status, out, err = run(["handle", str(EVENT), "--format", "json"])
    assert status == 0, err
    from_file = json.loads(out)
    assert from_stdin["event"] == from_file["event"] and from_stdin["event"]["id"] == json.loads(text)["id"]


def test_handle_dash_with_malformed_standard_input_is_exit_2(monkeypatch):
    status, out, err = run(["handle", "-"], stdin=b"{not json", monkeypatch=monkeypatch)
    assert (status, out) == (2, "") and "cannot read event -" in err


COMMANDS = {  # each command with the arguments it needs to parse
    "handle": ["handle", "EV"],
    "simulate": ["simulate", "F"],
    "rollback": ["rollback", "C"],
    "history": ["history"],
    "demo": ["demo"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_the_aws_options_before_or_after_its_name(command):
    parser = main.__globals__["_parser"]()
    opts = ["--region", "eu-west-1", "--profile", "ops", "--endpoint-url", "http://127.0.0.1:1", "-vv"]
    before = parser.parse_args([*opts, *COMMANDS[command]])
    after = parser.parse_args([*COMMANDS[command], *opts])
    for args in (before, after):
        assert (args.region, args.profile, args.endpoint_url, args.verbose) == ("eu-west-1", "ops", "http://127.0.0.1:1", 2)
        assert cli_common.aws_environment(args)["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    # Given before the name and not after it, an option keeps its value (argparse's subparser
    # defaults would otherwise reset it).
    mixed = parser.parse_args(["--region", "eu-west-1", *COMMANDS[command], "--profile", "ops"])
    assert (mixed.region, mixed.profile) == ("eu-west-1", "ops")


def test_the_options_set_what_boto3_reads_for_the_command_only(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    seen = {}

    def spy(args):
        import boto3

        seen.update(region=boto3.Session().region_name, endpoint=os.environ.get("AWS_ENDPOINT_URL"),
                    level=logging.getLogger("keyfix").getEffectiveLevel())
        return 0

    parser = main.__globals__["_parser"]()
    args = parser.parse_args(["--region", "ap-southeast-2", "--endpoint-url", "http://127.0.0.1:9", "-q", "history"])
    args.func = spy
    with cli_common.applied(args):
        assert args.func(args) == 0
    assert seen == {"region": "ap-southeast-2", "endpoint": "http://127.0.0.1:9", "level": logging.ERROR}
    assert os.environ["AWS_REGION"] == "us-east-1" and "AWS_ENDPOINT_URL" not in os.environ


@pytest.mark.parametrize(("argv", "level"), [
    ([], "WARNING"), (["-v"], "INFO"), (["-vv"], "DEBUG"), (["-q"], "ERROR"),
    (["--log-level", "debug"], "DEBUG"), (["-q", "--log-level", "INFO"], "INFO"),
])
def test_log_level_from_the_flags(argv, level):
    args = main.__globals__["_parser"]().parse_args([*argv, "history"])
    assert cli_common.log_level(args) == level


def _no_credentials(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)


def test_no_credentials_is_exit_2_with_what_to_do_and_no_report(monkeypatch):
    _no_credentials(monkeypatch)
    status, out, err = run(["handle", str(A1), "--format", "json"])
    assert (status, out) == (2, "")
    assert "no AWS credentials found" in err and "--profile" in err and "AWS_ACCESS_KEY_ID" in err


def test_an_unknown_profile_is_exit_2_naming_it(monkeypatch):
    status, out, err = run(["--profile", "no-such-profile-h4", "handle", str(A1)])
    assert (status, out) == (2, "")
    assert "no-such-profile-h4" in err and "aws configure list-profiles" in err


def test_a_table_that_does_not_exist_is_exit_2_naming_it(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("KEYFIX_TABLE_NAME", "no-such-table-h4")
    with mock_aws():
        status, out, err = run(["handle", str(A1), "--format", "json"])
        h_status, h_out, h_err = run(["history", "--table", "no-such-table-h4"])
    assert (status, out) == (2, ""), err
    assert "'no-such-table-h4' does not exist in us-east-1" in err and "TableName output" in err
    assert (h_status, h_out) == (2, "") and "'no-such-table-h4' does not exist" in h_err


def test_an_internal_failure_is_still_exit_1():
    class Boom(Exception):
        pass

    assert cli_common.user_error(Boom("x")) is None
    assert cli_common.user_error(RuntimeError("wrapped")) is None


# ---------------------------------------------------------------- colour and width

class Tty(io.StringIO):
    def isatty(self):
        return True


REPORT_TEXT = ("keyfix propose | asg-launch-failure | x from aws.autoscaling | event e\n\nFinding 1: slr-not-in-key-policy\n"
               "  why       : " + "word " * 60 + "\n"
               "  fix [proposed] key-policy-statement in account 1 on k\n"
               "      $ aws kms put-key-policy --key-id " + "x" * 150)


@pytest.mark.parametrize(("stream", "env", "coloured"), [
    (Tty(), {}, True), (Tty(), {"NO_COLOR": "1"}, False), (Tty(), {"NO_COLOR": ""}, True),
    (Tty(), {"TERM": "dumb"}, False), (io.StringIO(), {}, False),
])
def test_colour_only_on_a_terminal_and_never_with_no_color(stream, env, coloured):
    shown = term.styled(REPORT_TEXT, stream, env)
    assert ("\033[" in shown) is coloured
    # Without colour the words are the report's, whether wrapped or not.
    plain = term.styled(REPORT_TEXT, stream, {"NO_COLOR": "1"})
    assert plain.split() == REPORT_TEXT.split()


def test_not_a_terminal_is_left_exactly_as_it_is():
    assert term.styled(REPORT_TEXT, io.StringIO(), {}) == REPORT_TEXT


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec="ascii", exclude_characters="\r\x0b\x0c\x1c\x1d\x1e\x85"), max_size=600),
       columns=st.integers(40, 200))
def test_wrapping_fits_the_width_and_keeps_every_word_and_command(text, columns):
    shown = term.styled(text, Tty(), {"NO_COLOR": "1"}, columns=columns)
    assert shown.split() == text.split()
    lines = shown.split("\n")
    # A line wider than the terminal is a pasteable command, or one word textwrap keeps whole.
    too_wide = [line for line in lines if len(line) > columns]
    assert all(line.lstrip().startswith("$ ") or len(line.split()) == 1 for line in too_wide), too_wide
    commands = [line for line in text.split("\n") if line.lstrip().startswith("$ ")]
    assert all(c in lines for c in commands)


def test_a_long_explanation_is_wrapped_under_its_label():
    shown = term.styled(REPORT_TEXT, Tty(), {"NO_COLOR": "1"}, columns=80).split("\n")
    why = [i for i, line in enumerate(shown) if line.startswith("  why       : ")][0]
    assert len(shown[why]) <= 80 and shown[why + 1].startswith(" " * 14 + "word")
    assert any(line.startswith("      $ aws kms put-key-policy") and len(line) > 150 for line in shown)


def test_the_console_script_honours_no_color_on_a_pipe():
    env = {**os.environ, "NO_COLOR": "1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run([sys.executable, "-m", "keyfix", "handle", str(EVENT)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "\033[" not in done.stdout and "No finding" in done.stdout
