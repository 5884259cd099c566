"""One reading of an instance's StateReason for the resolver, the ordinary-stop path and the scan."""

from __future__ import annotations

import pytest

from keyfix.predict.subjects import kms_state_reason
from keyfix.resolve.state_reasons import is_kms_state_reason


@pytest.mark.parametrize("code, message, kms", [
    ("Client.InternalError", "Client.InternalError: Client error on launch", True),  # troubleshooting-launch.html
    ("Client.InvalidKMSKey.InvalidState", "The KMS key provided is in an incorrect state", True),
    ("", "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state", True),  # message only
    ("Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown", False),
    ("Server.SpotInstanceTermination", "", False),
    ("", "", False),
])
def test_the_resolver_and_the_scan_read_a_state_reason_alike(code, message, kms):
    assert is_kms_state_reason(code, message) is kms
    assert kms_state_reason({"StateReason": {"Code": code, "Message": message}}) is kms
