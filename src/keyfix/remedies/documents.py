"""The exact documents keyfix proposes or writes, and the AWS CLI that does the same.

Pure functions of ARNs and action lists. Every statement keyfix adds to a key policy
has a `keyfix-` Sid, names one specific principal, lists only the actions needed and
puts `kms:GrantIsForAWSResource` on grant actions, so that it can be recognised,
audited and removed later.

Names come from events and AWS responses, and the CLI lines are pasted into a shell by
on-call: every builder checks the names it embeds against what AWS accepts
(`keyfix.names`, raising `InvalidName`), and every value in a CLI line is shell-quoted,
even ones that look safe today (IAM paths may legitimately contain `$`, `;` or quotes).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

from keyfix import names
from keyfix.arns import Arn, identity_holder

SID_PREFIX = "keyfix-"

# The most keyfix ever allows for key use: the Auto Scaling guide's statement for the
# service-linked role (Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, DescribeKey), spelled
# out so that nothing beyond them (e.g. GenerateDataKeyPair) is allowed. A fix lists only the
# actions that were denied, which for a launch are EBS's list (resolve.needs).
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
EBS_USE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
)
# The grant actions of AWS's default key policy for key users ("Allow attachment of
# persistent resources"). keyfix gives only those that were denied (remedies.plan).
# https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-service-integration
GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")
# Grant operations for this account's service-linked role on a key in another account
# (seeds 001/004). AWS documents two sets: the knowledge-centre article
# (https://repost.aws/knowledge-center/kms-launch-ec2-instance) grants five (Decrypt,
# GenerateDataKeyWithoutPlaintext, ReEncryptFrom, ReEncryptTo, CreateGrant); the Auto Scaling
# guide's create-grant example
# (https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html#policy-example-cmk-cross-account-access)
# grants eight (those five plus Encrypt, GenerateDataKey, DescribeKey). keyfix grants what
# EBS's own permission list says EBS uses
# (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html#ebs-encryption-permissions):
# the five plus DescribeKey. Encrypt and GenerateDataKey are added only when a failed request
# asked for them.
SLR_GRANT_OPERATIONS = ("Decrypt", "DescribeKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo",
                        "CreateGrant")
OPTIONAL_GRANT_OPERATIONS = ("Encrypt", "GenerateDataKey")

_FOR_AWS_RESOURCE = {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def _tag(principal_arn: str) -> str:
    # Sids must be unique within a policy; the principal's name plus a short hash keeps
    # two principals with the same name in different paths or accounts apart.
    name = principal_arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    digest = hashlib.sha256(principal_arn.encode()).hexdigest()[:8]
    return f"{name}-{digest}"


def use_statement(principal_arn: str, actions: tuple[str, ...] | list[str]) -> dict[str, Any]:
    names.principal_arn(principal_arn)
    return {
        "Sid": f"{SID_PREFIX}use-{_tag(principal_arn)}",
        "Effect": "Allow",
        "Principal": {"AWS": principal_arn},
        "Action": list(actions),
        "Resource": "*",
    }


def grant_statement(principal_arn: str, actions: tuple[str, ...] | list[str]) -> dict[str, Any]:
    names.principal_arn(principal_arn)
    return {
        "Sid": f"{SID_PREFIX}grant-{_tag(principal_arn)}",
        "Effect": "Allow",
        "Principal": {"AWS": principal_arn},
        "Action": list(actions),
        "Resource": "*",
        "Condition": json.loads(json.dumps(_FOR_AWS_RESOURCE)),
    }


def key_policy_statements(
    principal_arn: str, use_actions: list[str], grant_actions: list[str]
) -> list[dict[str, Any]]:
    """The one or two statements that let `principal_arn` use a key through AWS services."""
    statements = []
    if use_actions:
        statements.append(use_statement(principal_arn, use_actions))
    if grant_actions:
        statements.append(grant_statement(principal_arn, grant_actions))
    return statements


def grant_parameters(key_arn: str, grantee: str, operations: list[str]) -> dict[str, Any]:
    """CreateGrant parameters. https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html
    A grant Name allows only [a-zA-Z0-9:/_-], narrower than role names ([\\w+=,.@-]): the
    other characters become `_` (the hash in the tag keeps distinct grantees apart)."""
    names.key_arn(key_arn)
    names.principal_arn(grantee)
    for operation in operations:
        names.grant_operation(operation)
    return {
        "KeyId": key_arn,
        "GranteePrincipal": grantee,
        "Operations": list(operations),
        "Name": names.grant_name(names.GRANT_NAME_CHARS.sub("_", f"{SID_PREFIX}{_tag(grantee)}")),
    }


def identity_policy(key_arn: str, actions: list[str], grant_actions: list[str]) -> dict[str, Any]:
    """An inline identity policy on one key. IAM Sids allow only [A-Za-z0-9], hence no hyphen.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_sid.html"""
    names.key_arn(key_arn)
    statements: list[dict[str, Any]] = []
    if actions:
        statements.append({"Sid": "KeyfixUseKey", "Effect": "Allow", "Action": list(actions), "Resource": key_arn})
    if grant_actions:
        statements.append(
            {
                "Sid": "KeyfixGrantForAwsResources",
                "Effect": "Allow",
                "Action": list(grant_actions),
                "Resource": key_arn,
                "Condition": json.loads(json.dumps(_FOR_AWS_RESOURCE)),
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def identity_policy_name(key_arn: str) -> str:
    names.key_arn(key_arn)
    return names.policy_name(f"keyfix-kms-{Arn.parse(key_arn).resource_id}")


# ---- AWS CLI ---------------------------------------------------------------------------
# Each line is built from an argv whose every element goes through shlex.quote, so that the
# shell on-call pastes it into passes each value to `aws` / `jq` as one literal argument.
# Only the redirections and file names below are shell syntax, and they are constants.
# https://docs.python.org/3/library/shlex.html#shlex.quote

POLICY_FILE = "keyfix-policy.json"
NEW_POLICY_FILE = "keyfix-policy.new.json"
JQ_ADD_STATEMENTS = ".Statement += $add"


def command(*argv: str) -> str:
    """One shell command line that runs exactly `argv`."""
    return " ".join(shlex.quote(arg) for arg in argv)


def _json(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def _key(key_arn: str) -> tuple[str, str]:
    """The validated key ARN and its Region (the CLI must address the key's own Region)."""
    names.key_arn(key_arn)
    return key_arn, Arn.parse(key_arn).region


def cli_get_key_policy(key_arn: str) -> list[str]:
    key, region = _key(key_arn)
    return [command("aws", "kms", "get-key-policy", "--region", region, "--key-id", key,
                    "--policy-name", "default", "--query", "Policy", "--output", "text")]


def cli_add_key_policy_statements(key_arn: str, statements: list[dict[str, Any]]) -> list[str]:
    """Merges with the policy in force when run, so nobody's later edit is overwritten."""
    key, region = _key(key_arn)
    return [
        cli_get_key_policy(key)[0] + f" > {POLICY_FILE}",
        command("jq", "--argjson", "add", _json(statements), JQ_ADD_STATEMENTS, POLICY_FILE)
        + f" > {NEW_POLICY_FILE}",
        command("aws", "kms", "put-key-policy", "--region", region, "--key-id", key,
                "--policy-name", "default", "--policy", f"file://{NEW_POLICY_FILE}"),
    ]


def cli_create_grant(params: dict[str, Any]) -> list[str]:
    key, region = _key(params["KeyId"])
    names.principal_arn(params["GranteePrincipal"])
    operations = [names.grant_operation(op) for op in params["Operations"]]
    return [command("aws", "kms", "create-grant", "--region", region, "--key-id", key,
                    "--grantee-principal", params["GranteePrincipal"], "--operations", *operations,
                    "--name", names.grant_name(params["Name"]))]


def cli_put_identity_policy(principal_arn: str, policy_name: str, document: dict[str, Any]) -> list[str]:
    names.principal_arn(principal_arn)
    names.policy_name(policy_name)
    kind, name = identity_holder(principal_arn)
    return [command("aws", "iam", f"put-{kind}-policy", f"--{kind}-name", name, "--policy-name", policy_name,
                    "--policy-document", _json(document))]


def cli_key_state(key_arn: str, state: str) -> list[str]:
    # https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys-scheduling-key-deletion.html
    # A key whose deletion is cancelled comes back Disabled, hence enable-key after it.
    key, region = _key(key_arn)
    base = ("--region", region, "--key-id", key)
    if state == "PendingDeletion":
        return [command("aws", "kms", "cancel-key-deletion", *base), command("aws", "kms", "enable-key", *base)]
    if state == "Disabled":
        return [command("aws", "kms", "enable-key", *base)]
    if state == "PendingImport":
        # https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys.html
        return [
            command("aws", "kms", "get-parameters-for-import", *base, "--wrapping-algorithm", "RSAES_OAEP_SHA_256",
                    "--wrapping-key-spec", "RSA_4096"),
            command("aws", "kms", "import-key-material", *base,
                    "--encrypted-key-material", "fileb://EncryptedKeyMaterial.bin",
                    "--import-token", "fileb://ImportToken.bin", "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE"),
        ]
    return []


def cli_create_service_linked_role(service: str) -> list[str]:
    # https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html
    return [command("aws", "iam", "create-service-linked-role", "--aws-service-name", names.service_principal(service))]


# Stand-ins on-call replaces; they name what goes there and are valid arguments as they are.
SOURCE_IMAGE_PLACEHOLDER = "SOURCE-AMI-ID"
TARGET_KEY_PLACEHOLDER = "YOUR-CUSTOMER-MANAGED-KEY-ARN"


def cli_re_encrypt(region: str, source: str | None) -> list[str]:
    """A copy of the snapshot or AMI encrypted under a customer managed key.
    https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html (encrypt on copy)
    A source that is neither a snapshot nor an AMI id (a volume, a group) leaves the AMI id
    for on-call to fill in rather than pass something EC2 would reject."""
    names.region(region)
    where = ("--region", region, "--source-region", region)
    if source and source.startswith("snap-"):
        return [command("aws", "ec2", "copy-snapshot", *where, "--source-snapshot-id", names.snapshot_id(source),
                        "--encrypted", "--kms-key-id", TARGET_KEY_PLACEHOLDER)]
    image = names.image_id(source) if source and source.startswith("ami-") else SOURCE_IMAGE_PLACEHOLDER
    return [command("aws", "ec2", "copy-image", *where, "--source-image-id", image,
                    "--name", "keyfix-reencrypted", "--encrypted", "--kms-key-id", TARGET_KEY_PLACEHOLDER)]
