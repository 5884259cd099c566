"""Reports to notify about, built from keyfix's own model (no AWS)."""

from __future__ import annotations

from hypothesis import strategies as st

from keyfix.report import Cause, EventRef, Finding, Fix, FixKind, FixStatus, Mode, Report, Trigger

ACCOUNT = "111122223333"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SLR = "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
EVENT = EventRef("ev-1", "aws.autoscaling", "EC2 Instance Launch Unsuccessful", Trigger.ASG_LAUNCH_FAILURE)


def group_arn(name: str) -> str:
    return f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:0f0e-11:autoScalingGroupName/{name}"


def fix(kind: FixKind = FixKind.KEY_POLICY_STATEMENT, status: FixStatus = FixStatus.PROPOSED) -> Fix:
    return Fix(kind, status, ACCOUNT, KEY, document=[{"Sid": "keyfix-x"}],
               cli=["aws kms put-key-policy --key-id k --policy-name default --policy file://p.json"])


def finding(cause: Cause = Cause.SLR_NOT_IN_KEY_POLICY, *fixes: Fix, group: str | None = "web-asg",
            principal: str | None = SLR, predicted: bool = False, explanation: str = "why") -> Finding:
    return Finding(cause, principal, KEY, ["kms:CreateGrant"], explanation, list(fixes),
                   resource=group_arn(group) if group else None, predicted=predicted)


def report(*findings: Finding, event: EventRef = EVENT, mode: Mode = Mode.APPLY) -> Report:
    return Report(event, mode, list(findings))


# Text AWS would accept in a group name: any Unicode, up to 255 characters
# (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html).
group_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/"), min_size=1, max_size=255)
fixes = st.builds(fix, st.sampled_from(list(FixKind)), st.sampled_from(list(FixStatus)))
findings = st.builds(
    finding, st.sampled_from(list(Cause)), group=st.none() | group_names,
    principal=st.none() | st.sampled_from([SLR, "arn:aws:iam::111122223333:user/dev-alice",
                                           "arn:aws:sts::111122223333:assumed-role/ops/s" + "x" * 60]),
    predicted=st.booleans(), explanation=st.text(max_size=2000),
).flatmap(lambda f: st.lists(fixes, max_size=4).map(lambda xs: (f.fixes.extend(xs), f)[1]))
reports = st.builds(lambda fs, trig, mode: report(*fs, event=EventRef("ev-h", "aws.autoscaling", "x", trig), mode=mode),
                    st.lists(findings, max_size=6), st.sampled_from(list(Trigger)), st.sampled_from(list(Mode)))
