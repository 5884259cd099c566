"""keyfix.resolve.sdk_models: EC2's model cut to keyfix's calls is current, complete and
answers exactly as the full model does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore
import pytest

from keyfix.resolve import sdk_models
from keyfix.sim import accounts
from tests.support.accounts import ASG_ACCOUNT, REGION, build_a1, build_c

ROOT = Path(__file__).resolve().parents[3]
CUT_FILE = sdk_models.MODELS / "ec2" / sdk_models.EC2_API_VERSION / "service-2.json"
REGENERATE = "run `.venv/bin/python -m keyfix.resolve.sdk_models` and commit src/keyfix/resolve/sdk_models/"


def test_the_committed_cut_is_the_installed_botocores_cut():
    assert sdk_models.VERSION_FILE.read_text().strip() == botocore.__version__, REGENERATE
    assert json.loads(CUT_FILE.read_text()) == sdk_models.cut(sdk_models.full_ec2_model(),
                                                             sdk_models.EC2_OPERATIONS), REGENERATE


def test_the_cut_holds_exactly_the_ec2_actions_the_functions_role_may_call():
    # A new EC2 call needs its permission in template.yaml; this makes it need its operation here too.
    allowed = set(re.findall(r"^\s*- ec2:([A-Za-z]+)\s*$", (ROOT / "template.yaml").read_text(), re.M))
    assert allowed == set(sdk_models.EC2_OPERATIONS)
    assert set(json.loads(CUT_FILE.read_text())["operations"]) == allowed


def test_every_shape_the_cut_names_is_in_it():
    model = json.loads(CUT_FILE.read_text())
    named: list[str] = []
    for operation in model["operations"].values():
        named += [operation[k]["shape"] for k in ("input", "output") if k in operation]
        named += [e["shape"] for e in operation.get("errors", [])]
    for shape in model["shapes"].values():
        named += [m["shape"] for m in shape.get("members", {}).values()]
        named += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
    assert named and set(named) <= set(model["shapes"])
    assert len(model["shapes"]) < len(sdk_models.full_ec2_model()["shapes"]) / 10


def test_a_keyfix_session_builds_its_ec2_client_from_the_cut():
    client = sdk_models.new_session(region_name=REGION).client("ec2")
    assert sorted(client.meta.service_model.operation_names) == sorted(sdk_models.EC2_OPERATIONS)


def test_another_botocore_gets_the_full_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(botocore, "__version__", "0.0.0")
    assert sdk_models.data_path() is None
    client = sdk_models.new_session(region_name=REGION).client("ec2")
    assert "RunInstances" in client.meta.service_model.operation_names


def test_aws_data_path_is_kept_after_keyfixs_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    session = sdk_models.new_session(region_name=REGION)
    paths = session._session.get_component("data_loader").search_paths
    assert paths.index(str(sdk_models.MODELS)) < paths.index(str(tmp_path))


def _cut_session(account: str) -> Any:
    session = sdk_models.new_session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                     region_name=REGION)
    session.events.register("before-sign", lambda request, **_: request.headers.__setitem__(
        accounts.ACCOUNT_HEADER, account))
    return session


def _without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


@pytest.mark.usefixtures("moto")
def test_both_models_give_the_same_answers_to_every_call_keyfix_makes():
    a1, c = build_a1(), build_c()
    full = accounts.session(ASG_ACCOUNT, REGION).client("ec2")
    cut = _cut_session(ASG_ACCOUNT).client("ec2")
    assert "RunInstances" in full.meta.service_model.operation_names
    assert "RunInstances" not in cut.meta.service_model.operation_names
    instance = full.describe_instances()["Reservations"][0]["Instances"][0]
    volumes = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
    snapshots = [s["SnapshotId"] for s in full.describe_snapshots(OwnerIds=["self"])["Snapshots"]]
    images = [i["ImageId"] for i in full.describe_images(Owners=["self"])["Images"]]
    calls = {
        "DescribeImages": {"ImageIds": images},
        "DescribeInstances": {"InstanceIds": [instance["InstanceId"]]},
        "DescribeLaunchTemplateVersions": {"LaunchTemplateId": a1.template_id, "Versions": ["$Default"]},
        "DescribeSnapshots": {"SnapshotIds": snapshots},
        "DescribeVolumes": {"VolumeIds": volumes},
        "GetEbsDefaultKmsKeyId": {},
        "GetEbsEncryptionByDefault": {},
    }
    assert set(calls) == set(sdk_models.EC2_OPERATIONS)
    answered = 0
    for operation, params in calls.items():
        expected = _without_metadata(getattr(full, botocore.xform_name(operation))(**params))
        got = _without_metadata(getattr(cut, botocore.xform_name(operation))(**params))
        assert got == expected, operation
        answered += bool(expected)
    assert answered == len(calls)  # every call answered something to compare
    assert images and snapshots and volumes and c is not None
