"""Partitions come from botocore's endpoint data, not a hand-kept table (issue #13): the
aws-iso* partitions used to come out as "aws"."""

from __future__ import annotations

import json
from pathlib import Path

import botocore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyfix.arns import partition_of, slr_arn


def _botocore_regions() -> dict[str, str]:
    """Every Region botocore lists, with its partition, read from its own data file. The
    "<partition>-global" entries name global endpoints, not Regions an event can carry."""
    data = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    return {region: p["id"] for p in data["partitions"] for region in p["regions"] if not region.endswith("-global")}


REGIONS = _botocore_regions()


@pytest.mark.parametrize(("region", "partition"), [
    # https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html
    ("us-east-1", "aws"), ("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"),
    ("us-iso-east-1", "aws-iso"), ("us-isob-east-1", "aws-iso-b"),
])
def test_known_regions(region, partition):
    assert partition_of(region) == partition


def test_every_partition_botocore_knows_is_reached():
    assert len(set(REGIONS.values())) >= 6  # aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, ...
    assert {r: partition_of(r) for r in REGIONS} == REGIONS


@given(st.sampled_from(sorted(REGIONS)))
def test_arns_built_for_a_region_carry_its_partition(region):
    arn = slr_arn("111122223333", region)
    assert arn.startswith(f"arn:{REGIONS[region]}:iam::111122223333:role/aws-service-role/")


@pytest.mark.parametrize("region", [None, "", "xx-nowhere-9"])
def test_no_or_unknown_region_is_the_commercial_partition(region):
    assert partition_of(region) == "aws"
