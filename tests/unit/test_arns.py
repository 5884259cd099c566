"""keyfix.arns.group_name_of: the one place a group's name is read from its ARN."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keyfix.arns import group_name_of
from keyfix.messages.links import resource_link
from keyfix.render import _short_resource

PREFIX = "arn:aws:autoscaling:us-east-1:111122223333:autoScalingGroup:0f1e2d3c-4b5a-6978-8877-665544332211"
# Group names are 1-255 characters of almost any text, "/" and ":" included
# (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html).
names = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=255)


@given(names)
def test_the_whole_name_comes_back_whatever_it_holds(name: str):
    arn = f"{PREFIX}:autoScalingGroupName/{name}"
    assert group_name_of(arn) == name
    assert _short_resource(arn) == f"group {name}"


def test_other_resources_have_no_group_name():
    for resource in (None, "", "i-0abc", "vol-0abc", "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc",
                     f"{PREFIX}:autoScalingGroupName/"):
        assert group_name_of(resource) is None


def test_the_console_link_names_a_group_whose_name_holds_a_slash():
    link = resource_link(f"{PREFIX}:autoScalingGroupName/team/web", "us-east-1")
    assert link is not None and "AutoScalingGroupDetails:id=team%2Fweb;" in link
