import json
import shlex

from keyfix.remedies import documents as docs

SLR = "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_seed_a1_statements_spell_out_the_documented_actions():
    use, grant = docs.key_policy_statements(SLR, list(docs.EBS_USE_ACTIONS), ["kms:CreateGrant"])
    assert use["Principal"] == {"AWS": SLR} and grant["Principal"] == {"AWS": SLR}
    # seeds 000/001: Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, DescribeKey -- without wildcards
    assert set(use["Action"]) == {"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                                  "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"}
    assert grant["Action"] == ["kms:CreateGrant"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert use["Sid"].startswith("keyfix-") and grant["Sid"].startswith("keyfix-") and use["Sid"] != grant["Sid"]


def test_sids_differ_for_same_named_principals_in_different_paths():
    a = docs.use_statement("arn:aws:iam::111122223333:role/a/app", ["kms:Decrypt"])["Sid"]
    b = docs.use_statement("arn:aws:iam::111122223333:role/b/app", ["kms:Decrypt"])["Sid"]
    assert a != b


def test_identity_policy_sids_are_alphanumeric_and_scoped_to_the_key():
    policy = docs.identity_policy(KEY, ["kms:Decrypt"], ["kms:CreateGrant"])
    for statement in policy["Statement"]:
        assert statement["Sid"].isalnum()
        assert statement["Resource"] == KEY
    assert policy["Statement"][1]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_grant_cli_matches_seed_a2_command_shape():
    params = docs.grant_parameters(KEY, SLR, list(docs.SLR_GRANT_OPERATIONS))
    (command,) = docs.cli_create_grant(params)
    argv = shlex.split(command)
    assert argv[:3] == ["aws", "kms", "create-grant"]
    ops = argv[argv.index("--operations") + 1: argv.index("--name")]
    # EBS's permission list: the knowledge-centre article's five plus DescribeKey (documents.py)
    assert ops == ["Decrypt", "DescribeKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant"]
    assert argv[argv.index("--grantee-principal") + 1] == SLR


def test_key_policy_cli_merges_statements_it_carries():
    statements = docs.key_policy_statements(SLR, ["kms:Decrypt"], [])
    commands = docs.cli_add_key_policy_statements(KEY, statements)
    jq = shlex.split(commands[1])
    assert json.loads(jq[jq.index("--argjson") + 2]) == statements
    assert "put-key-policy" in commands[2] and "--bypass-policy-lockout-safety-check" not in " ".join(commands)


def test_identity_cli_targets_role_or_user_by_name():
    doc = docs.identity_policy(KEY, ["kms:Decrypt"], [])
    (role_cmd,) = docs.cli_put_identity_policy("arn:aws:iam::111122223333:role/team/ec2-operator", "p", doc)
    (user_cmd,) = docs.cli_put_identity_policy("arn:aws:iam::111122223333:user/dev-alice", "p", doc)
    assert shlex.split(role_cmd)[:5] == ["aws", "iam", "put-role-policy", "--role-name", "ec2-operator"]
    assert shlex.split(user_cmd)[:5] == ["aws", "iam", "put-user-policy", "--user-name", "dev-alice"]
    assert json.loads(shlex.split(role_cmd)[-1]) == doc


def test_key_state_cli_cancels_deletion_then_enables():
    commands = docs.cli_key_state(KEY, "PendingDeletion")
    assert [c.split()[2] for c in commands] == ["cancel-key-deletion", "enable-key"]
    assert docs.cli_key_state(KEY, "Enabled") == []
