"""keyfix.predict.subjects.group_page: the request a scan's listing makes (issue #14, P6).

Pages as large as DescribeAutoScalingGroups allows, and no instance details: keyfix never
reads a group's instances, and they are what gets the call throttled for large groups."""

from __future__ import annotations

from typing import Any

import pytest

from keyfix.predict.subjects import GROUP_PAGE_SIZE, group_page


class RecordingGateway:
    def __init__(self, page: dict[str, Any]) -> None:
        self.page = page
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        self.requests.append((service, operation, params))
        return self.page


GROUP = {"AutoScalingGroupName": "web", "AutoScalingGroupARN": "arn:aws:autoscaling:us-east-1:111122223333:"
         "autoScalingGroup:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0:autoScalingGroupName/web"}


@pytest.mark.parametrize(("token", "names"), [(None, None), ("t1", None), (None, ["web", "api"])])
def test_the_listing_asks_for_full_pages_without_instances(token, names):
    gw = RecordingGateway({"AutoScalingGroups": [GROUP], "NextToken": "t2"})

    page = group_page(gw, "us-east-1", token, names=names)

    assert len(gw.requests) == 1
    service, operation, params = gw.requests[0]
    assert (service, operation) == ("autoscaling", "DescribeAutoScalingGroups")
    assert params.pop("region") == "us-east-1"
    expected = {"MaxRecords": GROUP_PAGE_SIZE, "IncludeInstances": False}
    if token:
        expected["NextToken"] = token
    if names:
        expected["AutoScalingGroupNames"] = names
    assert params == expected
    assert GROUP_PAGE_SIZE == 100
    assert [(s.name, s.arn, s.group) for s in page.subjects] == [("web", GROUP["AutoScalingGroupARN"], GROUP)]
    assert (page.token, page.next_token) == (token, "t2")
