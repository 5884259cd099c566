"""What the resolver learned from AWS: plain data for the diagnosis.

The diagnosis and the policy model take these, never a client. `None` in a field
means "could not be read"; the reason is in `unreadable`, so a finding can say what
keyfix could not see (a key in another account is the usual case).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyfix.events.incident import Incident


@dataclass(frozen=True)
class KeyFacts:
    arn: str
    account: str
    region: str
    exists: bool = True
    state: str | None = None  # KeyState: Enabled | Disabled | PendingDeletion | PendingImport | ...
    manager: str | None = None  # KeyManager: AWS | CUSTOMER
    policy: dict[str, Any] | None = None  # the "default" key policy document
    grants: tuple[dict[str, Any], ...] | None = None  # ListGrants entries, as AWS returns them
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    # ListResourceTags not called yet: `tags` is empty because nobody needed them so far,
    # not because the key has none (keyfix.resolve.kms.read_tags reads them).
    tags_unread: bool = False


@dataclass(frozen=True)
class PrincipalFacts:
    arn: str  # IAM ARN with path (role, user, root) or a service principal
    kind: str  # user | role | service-linked-role | root | service
    account: str | None
    exists: bool | None = None  # None: could not tell
    unique_id: str | None = None  # AIDA.../AROA...
    identity_policies: tuple[dict[str, Any], ...] | None = None  # inline, managed, group
    permission_boundary: dict[str, Any] | None = None
    unreadable: tuple[str, ...] = ()
    # Added by the resolver (defaults keep older constructions valid):
    # where each entry of `identity_policies` came from, same order, e.g.
    # "inline:kms-use", "arn:aws:iam::aws:policy/AmazonEC2FullAccess", "group:devs/inline:x".
    identity_policy_names: tuple[str, ...] = ()
    permission_boundary_arn: str | None = None
    # The user's or role's name and ARN exactly as IAM's GetUser/GetRole returned them: set
    # only when keyfix read the principal itself. Writes name nothing else (safety.CheckedPrincipal).
    iam_name: str | None = None


@dataclass(frozen=True)
class AccessNeed:
    """`principal` must be able to perform `operations` on `key_arn` for the failed
    operation to succeed. `context` holds the request context AWS would send
    (kms:ViaService, kms:GrantIsForAWSResource, kms:CallerAccount, ...)."""

    principal: str
    key_arn: str
    operations: tuple[str, ...]
    context: dict[str, str | list[str]] = field(default_factory=dict)
    resource: str | None = None  # what used the key: group, volume, instance, snapshot ARN
    # Condition keys (exact names, or prefixes ending in "/") whose value AWS would send but
    # keyfix could not know: the model treats conditions on them as unknown, not false
    # (keyfix.resolve.context, keyfix.policy.unknowns).
    unknown_keys: tuple[str, ...] = ()
    # Readings of AWS's pages the resolver had to make to fill `context` (e.g. that a
    # service passes no session tags when it uses its service-linked role): a decision may
    # be explained with them, never written on (keyfix.resolve.context).
    readings: tuple[str, ...] = ()


@dataclass
class Situation:
    """Everything resolved for one incident."""

    incident: Incident
    needs: list[AccessNeed] = field(default_factory=list)
    keys: dict[str, KeyFacts] = field(default_factory=dict)
    principals: dict[str, PrincipalFacts] = field(default_factory=dict)
    # The failure is not about KMS (e.g. Server.InternalError, VolumeLimitExceeded).
    not_kms_reason: str | None = None
    # What could not be resolved at all (group vanished, DescribeInstances denied, ...).
    notes: list[str] = field(default_factory=list)
    # What the per-event limits (keyfix.resolve.limits) left unchecked; always reported.
    unchecked: list[str] = field(default_factory=list)
    # False when keyfix could not learn which account it runs in and took the event's
    # word for it: good enough to read and report, never to write.
    account_confirmed: bool = True
