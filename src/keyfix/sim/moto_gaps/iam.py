"""IAM helpers: service-linked roles created the way AWS creates them on first use."""

from __future__ import annotations

from typing import Any


def ensure_service_linked_role(account: str, service: str, *, region: str = "us-east-1", suffix: str = "") -> Any:
    """Create a service-linked role the way AWS does on first use, unless it exists."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    iam = iam_backends[account][get_partition(region)]
    expected_path = f"/aws-service-role/{service}/"
    for existing in iam.roles.values():
        if existing.path != expected_path:
            continue
        if (suffix and existing.name.endswith("_" + suffix)) or (not suffix and "_" not in existing.name):
            return existing
    return iam.create_service_linked_role(service, f"Service-linked role for {service}", suffix)
