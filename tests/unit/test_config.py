import pytest

from keyfix.config import ConfigError, Settings
from keyfix.report import Mode


def test_defaults_are_propose_and_empty_allowlists():
    s = Settings.from_env({})
    assert s.mode is Mode.PROPOSE
    assert s.key_allowlist == () and s.principal_allowlist == ()
    assert s.sns_topic_arn is None and s.table_name is None


def test_reads_contract_variable_names():
    s = Settings.from_env({
        "KEYFIX_MODE": "apply",
        "KEYFIX_KEY_ALLOWLIST": " arn:aws:kms:us-east-1:111122223333:key/* , ,arn:aws:kms:*:444455556666:key/abc",
        "KEYFIX_PRINCIPAL_ALLOWLIST": "arn:aws:iam::111122223333:role/ops-*",
        "KEYFIX_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:keyfix",
        "KEYFIX_TABLE_NAME": "keyfix",
    })
    assert s.mode is Mode.APPLY
    assert s.key_allowlist == ("arn:aws:kms:us-east-1:111122223333:key/*", "arn:aws:kms:*:444455556666:key/abc")
    assert s.sns_topic_arn.endswith(":keyfix") and s.table_name == "keyfix"


def test_bad_mode_is_a_clear_error():
    with pytest.raises(ConfigError, match="KEYFIX_MODE"):
        Settings.from_env({"KEYFIX_MODE": "yolo"})


def test_flag_overrides_environment():
    assert Settings.from_env({"KEYFIX_MODE": "apply"}).with_mode("propose").mode is Mode.PROPOSE
    assert Settings.from_env({"KEYFIX_MODE": "apply"}).with_mode(None).mode is Mode.APPLY


@pytest.mark.parametrize("pattern,arn,expected", [
    ("arn:aws:kms:us-east-1:111122223333:key/*", "arn:aws:kms:us-east-1:111122223333:key/1234", True),
    ("arn:aws:kms:us-east-1:111122223333:key/*", "arn:aws:kms:us-east-1:444455556666:key/1234", False),
    # only `*` is a wildcard: `?` and `[` are literal characters in a pattern
    ("arn:aws:iam::111122223333:role/a?c", "arn:aws:iam::111122223333:role/abc", False),
    ("arn:aws:iam::111122223333:role/[ab]", "arn:aws:iam::111122223333:role/a", False),
    ("arn:aws:iam::111122223333:role/[ab]", "arn:aws:iam::111122223333:role/[ab]", True),
])
def test_allowlist_patterns(pattern, arn, expected):
    s = Settings(key_allowlist=(pattern,), principal_allowlist=(pattern,))
    assert s.key_allowed(arn) is expected
    assert s.principal_allowed(arn) is expected
