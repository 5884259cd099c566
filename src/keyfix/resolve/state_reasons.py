"""Whether an EC2 instance's StateReason says a KMS key could not be used.

https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html#encrypted-ebs-volume-missing-permissions:
an instance whose volume's key the launcher cannot use goes pending -> stopped with
"Client.InternalError: Client error on launch"; a key in the wrong state gives
Client.InvalidKMSKey.InvalidState (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html).
The marker may be in the Code or only in the Message, so both are searched.

One definition for the resolver, the quick read of an ordinary stop (keyfix.irrelevant) and
the scan's stopped instances (keyfix.predict): it imports nothing, so the ordinary-stop path
stays cheap.
"""

from __future__ import annotations

KMS_STATE_REASONS = ("Client.InternalError", "Client.InvalidKMSKey")


def is_kms_state_reason(code: str, message: str) -> bool:
    return any(marker in code or marker in message for marker in KMS_STATE_REASONS)
