"""Builders for the broken accounts of the seed cases (docs/seed-cases.md), on moto.

Shared by the tests (tests/support/accounts.py re-exports this) and `keyfix demo`. Each
builder works through the AWS API and returns what it built plus the `Incident` the failure
would produce.
"""

from keyfix.sim.scenarios.asg import AsgCase, a2_key_policy, build_a1, build_a2, make_group
from keyfix.sim.scenarios.common import (
    ASG_ACCOUNT,
    AZ,
    CLIENT_ERROR_ON_LAUNCH,
    GROUP,
    INVALID_STATE_MESSAGE,
    KEY_ACCOUNT,
    REGION,
    TEMPLATE,
    USE_ACTIONS,
    Env,
    make_snapshot,
    plain_image,
    register_image,
    root_only_policy,
)
from keyfix.sim.scenarios.instances import (
    InstanceCase,
    UserCase,
    b_key_policy,
    build_b,
    build_c,
    ec2_full_access_document,
    start_instances_record,
)

__all__ = [
    "ASG_ACCOUNT",
    "AZ",
    "CLIENT_ERROR_ON_LAUNCH",
    "GROUP",
    "INVALID_STATE_MESSAGE",
    "KEY_ACCOUNT",
    "REGION",
    "TEMPLATE",
    "USE_ACTIONS",
    "AsgCase",
    "Env",
    "InstanceCase",
    "UserCase",
    "a2_key_policy",
    "b_key_policy",
    "build_a1",
    "build_a2",
    "build_b",
    "build_c",
    "ec2_full_access_document",
    "make_group",
    "make_snapshot",
    "plain_image",
    "register_image",
    "root_only_policy",
    "start_instances_record",
]
