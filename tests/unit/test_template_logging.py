"""The function's log settings (template.yaml, KeyfixFunction's LoggingConfig) checked against
the installed Powertools: the level Lambda hands the function is the level keyfix's Logger uses,
and no allowed level makes Lambda drop the metric (EMF) lines keyfix's alarms are built on."""

from __future__ import annotations

import json
import logging
import uuid
import warnings

import pytest

from tests.unit.test_template import load_template

# Lambda's application log levels, most verbose first; a line below the chosen level is
# dropped, and a line without a "level" counts as INFO:
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
LAMBDA_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
LEVEL_OF_UNLEVELLED_LINES = "INFO"


@pytest.fixture(scope="module")
def template():
    return load_template()


def _function(template):
    return template["Resources"]["KeyfixFunction"]["Properties"]


def test_logging_config_takes_the_level_from_the_log_level_parameter(template):
    config = _function(template)["LoggingConfig"]
    assert config == {"LogFormat": "JSON", "ApplicationLogLevel": {"Ref": "LogLevel"}, "SystemLogLevel": "INFO"}
    # Powertools' own variable says the same, so it has no mismatch to warn about.
    assert _function(template)["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert "LOG_LEVEL" not in _function(template)["Environment"]["Variables"]  # Powertools' legacy name


def test_every_allowed_level_keeps_the_metric_lines(template):
    parameter = template["Parameters"]["LogLevel"]
    allowed = parameter["AllowedValues"]
    assert parameter["Default"] in allowed and allowed
    for level in allowed:
        assert level in LAMBDA_LEVELS, f"{level} is not a Lambda application log level"
        assert LAMBDA_LEVELS.index(level) <= LAMBDA_LEVELS.index(LEVEL_OF_UNLEVELLED_LINES), (
            f"at {level} Lambda would drop lines without a level, the metric lines among them")


def test_powertools_metric_lines_carry_no_level(capsys):
    """The premise of the bound above: an EMF line as Powertools prints it has no "level"."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics(namespace="keyfix-test", service="keyfix-test")
    metrics.add_metric(name="Probe", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and "_aws" in lines[0]
    assert "level" not in {key.lower() for key in lines[0]}


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_the_level_lambda_sets_is_the_level_keyfix_logs_at(level, monkeypatch, template):
    """Lambda passes ApplicationLogLevel as AWS_LAMBDA_LOG_LEVEL; Powertools ranks it first."""
    from aws_lambda_powertools import Logger

    assert level in template["Parameters"]["LogLevel"]["AllowedValues"]
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", level)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", level)  # as the template sets it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = Logger(service=f"keyfix-test-{uuid.uuid4().hex}")
    assert logger.log_level == logging.getLevelName(level)
    assert [w for w in caught if "Advanced Logging Controls" in str(w.message)] == []


def test_lambdas_level_wins_over_powertools_own(monkeypatch):
    """Why the level lives in LoggingConfig: a different POWERTOOLS_LOG_LEVEL loses (with a warning)."""
    from aws_lambda_powertools import Logger

    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "INFO")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = Logger(service=f"keyfix-test-{uuid.uuid4().hex}")
    assert logger.log_level == logging.INFO
    assert any("Advanced Logging Controls" in str(w.message) for w in caught)
