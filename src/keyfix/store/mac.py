"""Tamper evidence of audit records: an HMAC over each record, made by a KMS HMAC key.

Anyone who can write keyfix's table could otherwise put a `change#<uuid>` item there and
have `keyfix rollback` act on it. Every audit record therefore carries a MAC that only a
caller allowed `kms:GenerateMac` on the stack's HMAC key (`KEYFIX_AUDIT_KEY_ARN`,
template.yaml `AuditMacKey`, KeySpec HMAC_256, KeyUsage GENERATE_VERIFY_MAC) can make; the
key material never leaves KMS, so the table alone cannot forge one.
https://docs.aws.amazon.com/kms/latest/developerguide/hmac.html
https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateMac.html
https://docs.aws.amazon.com/kms/latest/APIReference/API_VerifyMac.html

GenerateMac takes a message of at most 4,096 bytes and gives digests no special handling,
so the message is the SHA-256 digest of a domain tag, the item's id and the record's
canonical JSON (which holds its change id, sequence number and status): a MAC of one record
is worthless under another id, and a record with any field changed no longer verifies.
VerifyMac answers an HMAC that does not match with KMSInvalidMacException.

boto3/botocore are imported inside functions only (Lambda cold start).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

MAC_ALGORITHM = "HMAC_SHA_256"
# Bump when the canonical form changes; old records then no longer verify, by design.
MESSAGE_DOMAIN = b"keyfix.audit-record/1"


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, non-ASCII escaped."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def record_digest(item_id: str, record_json: str) -> bytes:
    """The 32-byte message that is MACed for the record `record_json` stored under `item_id`."""
    h = hashlib.sha256()
    for part in (MESSAGE_DOMAIN, item_id.encode("utf-8"), record_json.encode("utf-8")):
        # Length-prefixed, so no two (id, record) pairs give the same byte string.
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


class MacError(Exception):
    """The MAC could not be made (e.g. kms:GenerateMac denied): nothing is written unsigned."""


class KmsMac:
    """MACs made and checked by KMS with the HMAC key `key_arn` (only this key: a record
    naming some other key is checked against this one all the same)."""

    def __init__(self, key_arn: str, kms_client: Any) -> None:
        self.key_arn = key_arn
        self.client = kms_client

    def sign(self, message: bytes) -> str:
        try:
            mac = self.client.generate_mac(KeyId=self.key_arn, Message=message, MacAlgorithm=MAC_ALGORITHM)["Mac"]
        except Exception as exc:
            raise MacError(f"kms:GenerateMac with {self.key_arn} failed: {type(exc).__name__}: {exc}") from exc
        return base64.b64encode(mac).decode("ascii")

    def verify(self, message: bytes, mac_b64: str) -> tuple[bool, str | None]:
        """(True, None) when the MAC is this key's over `message`; (False, why) otherwise.
        Errors other than a mismatch (denied, key disabled, throttled) are also False,
        with the reason: an unverifiable record is treated as a forged one."""
        mac = _b64(mac_b64)
        if not mac:
            return False, "the MAC is not valid base64"
        try:
            valid = self.client.verify_mac(KeyId=self.key_arn, Message=message, Mac=mac,
                                           MacAlgorithm=MAC_ALGORITHM).get("MacValid") is True
        except Exception as exc:
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
            if code == "KMSInvalidMacException":
                return False, "the MAC does not match the record (altered, replayed or forged)"
            return False, f"kms:VerifyMac with {self.key_arn} failed: {code or type(exc).__name__}: {exc}"
        return (True, None) if valid else (False, "kms:VerifyMac did not confirm the MAC")


class LocalMac:
    """An in-process HMAC with a random secret, for `NullStore` (records kept in memory
    only; nothing outside the process can write them)."""

    key_arn = "local"

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(hmac.new(self._secret, message, hashlib.sha256).digest()).decode("ascii")

    def verify(self, message: bytes, mac_b64: str) -> tuple[bool, str | None]:
        if hmac.compare_digest(self.sign(message), mac_b64 or ""):
            return True, None
        return False, "the MAC does not match the record (altered, replayed or forged)"


def _b64(text: Any) -> bytes | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
