"""The EventBridge rules keyfix subscribes to, as data.

`PATTERNS` holds each rule's event pattern exactly as it appears in template.yaml (a
test compares them); `RULE_TRIGGERS` maps each rule to the trigger it reports. The
matcher (`matches`, `classify`, ...) lives in keyfix.events.matcher and is re-exported
here.
"""

from __future__ import annotations

from typing import Any

from keyfix.events.matcher import (
    PatternError,
    classify,
    matches,
    matching_rules,
    validate_pattern,
    wildcard_match,
)
from keyfix.report import Trigger

__all__ = [
    "PATTERNS",
    "RULE_TRIGGERS",
    "PatternError",
    "matches",
    "matching_rules",
    "classify",
    "validate_pattern",
    "wildcard_match",
]


# -- the rules ------------------------------------------------------------------------
#
# Rule names are the names of KeyfixFunction's EventBridgeRule events in template.yaml (SAM
# deploys each as the rule KeyfixFunction<name>). Order matters only for `classify`, which
# returns the first match; the patterns are disjoint (source/detail-type pairs differ).

PATTERNS: dict[str, dict[str, Any]] = {
    # https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html
    # Failed and Cancelled launch activities both arrive here; whether KMS is involved
    # is decided from StatusMessage in code (autoscaling.kms_related), not in the rule,
    # so that non-KMS failures are still reported as such.
    "AsgLaunchFailureRule": {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance Launch Unsuccessful"],
    },
    # Launch-then-terminate: the instance starts, EC2 terminates it because the volume
    # key cannot be used, and Auto Scaling reports a terminate. Auto Scaling puts the
    # "Termination Reason: <code>" text in an activity's StatusMessage (and Description),
    # while Cause is the "At <time> an instance was ..." sentence saying why the activity
    # started (DescribeScalingActivities: Cause = "The reason the activity began",
    # StatusMessage = "A friendly, more verbose description of the activity status";
    # https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Activity.html, and the
    # realevents DescribeScalingActivities sample). The event reference's example for
    # this detail-type shows StatusMessage "" and Cause "description-text" only, and no
    # real captured event of this kind is public, so the rule matches the codes in
    # either field ($or); the code then re-checks them.
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-wildcard-matching
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-complex-example-or
    "AsgLaunchTerminatedRule": {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance Terminate Successful"],
        "detail": {
            "$or": [
                {
                    "Cause": [
                        {"wildcard": "*Client.InvalidKMSKey*"},
                        {"wildcard": "*Client.InternalError*"},
                    ]
                },
                {
                    "StatusMessage": [
                        {"wildcard": "*Client.InvalidKMSKey*"},
                        {"wildcard": "*Client.InternalError*"},
                    ]
                },
            ]
        },
    },
    # CloudTrail-delivered events carry source "aws.<service>" and detail-type
    # "AWS API Call via CloudTrail":
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html
    # errorCode is "AccessDenied" in CloudTrail records and "AccessDeniedException" in
    # the KMS API; the prefix takes both.
    # keyfix's own denied calls are excluded (else each would invoke keyfix again): its
    # role lives under the IAM path /keyfix/, visible in
    # userIdentity.sessionContext.sessionIssuer.arn; callers without a session issuer
    # (IAM users, services) lack the field, hence the exists:false branch.
    # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-anything-but-wildcard
    # The template deploys this rule in state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS
    # (Decrypt, GenerateDataKey* are read-only events):
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail-management.html
    "KmsAccessDeniedRule": {
        "source": ["aws.kms"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["kms.amazonaws.com"],
            "errorCode": [{"prefix": "AccessDenied"}],
            "$or": [
                {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"exists": False}]}}}},
                {
                    "userIdentity": {
                        "sessionContext": {"sessionIssuer": {"arn": [{"anything-but": {"wildcard": "*:role/keyfix/*"}}]}}
                    }
                },
            ],
        },
    },
    # https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html
    # (createVolume / attachVolume / reattachVolume; snapshot events use the separate
    # detail-type "EBS Snapshot Notification" and are not matched here).
    "EbsVolumeFailureRule": {
        "source": ["aws.ec2"],
        "detail-type": ["EBS Volume Notification"],
        "detail": {"result": ["failed"]},
    },
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html
    # The state reason is not in the event; the resolver reads it (DescribeInstances).
    "Ec2StoppedRule": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["stopped", "terminated"]},
    },
}

# A group keyfix repaired launches again (issue #11, confirm recovery). Fires for every
# successful launch in the account: keyfix.followup.recovery keeps the common case to one
# DynamoDB read.
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html
PATTERNS["AsgLaunchSuccessfulRule"] = {
    "source": ["aws.autoscaling"],
    "detail-type": ["EC2 Instance Launch Successful"],
}

# Changes that can break a group before it fails (issue #11, item 4; keyfix.events.keychange):
# successful write calls only (no errorCode: a refused change changed nothing,
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-exists-matching).
# These are not read-only events, so the rule needs no ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail-management.html).
# keyfix's own writes (its role under the IAM path /keyfix/) are excluded as in KmsAccessDeniedRule,
# and checked again in code (keyfix.predict.keychange).
PATTERNS["KeyChangeRule"] = {
    "source": ["aws.kms", "aws.ec2", "aws.autoscaling"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {
        "eventSource": ["kms.amazonaws.com", "ec2.amazonaws.com", "autoscaling.amazonaws.com"],
        "eventName": ["PutKeyPolicy", "DisableKey", "ScheduleKeyDeletion", "RevokeGrant", "RetireGrant",
                      "CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "ModifyEbsDefaultKmsKeyId",
                      "CreateAutoScalingGroup", "UpdateAutoScalingGroup"],
        "errorCode": [{"exists": False}],
        "$or": [
            {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"exists": False}]}}}},
            {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"anything-but": {"wildcard": "*:role/keyfix/*"}}]}}}},
        ],
    },
}

RULE_TRIGGERS: dict[str, Trigger] = {
    "AsgLaunchFailureRule": Trigger.ASG_LAUNCH_FAILURE,
    "AsgLaunchTerminatedRule": Trigger.ASG_LAUNCH_FAILURE,
    "KmsAccessDeniedRule": Trigger.KMS_ACCESS_DENIED,
    "EbsVolumeFailureRule": Trigger.EBS_VOLUME_FAILURE,
    "Ec2StoppedRule": Trigger.EC2_LAUNCH_FAILURE,
    "AsgLaunchSuccessfulRule": Trigger.RECOVERY,
    "KeyChangeRule": Trigger.KEY_CHANGE,
}
