"""Reading keys and principals into a Situation, under the per-event caps
(keyfix.resolve.limits): what every trigger's reader shares."""

from __future__ import annotations

from keyfix.resolve.facts import KeyFacts, PrincipalFacts, Situation
from keyfix.resolve.gateway import AwsGateway
from keyfix.resolve.iam import read_principal
from keyfix.resolve.kms import read_key
from keyfix.resolve.limits import MAX_KEYS_PER_EVENT, MAX_PRINCIPALS_PER_EVENT


def add_key(gw: AwsGateway, s: Situation, ref: str, region: str) -> KeyFacts:
    facts = read_key(gw, ref, region)
    s.keys[facts.arn] = facts
    return facts


def add_keys(gw: AwsGateway, s: Situation, refs: list[str], region: str) -> list[KeyFacts]:
    """Read each referenced key once; references to the same key (id, alias, ARN) collapse.
    At most MAX_KEYS_PER_EVENT distinct references are read; the rest are reported unchecked."""
    refs = list(dict.fromkeys(refs))
    found: dict[str, KeyFacts] = {}
    for ref in refs[:MAX_KEYS_PER_EVENT]:
        facts = add_key(gw, s, ref, region)
        found.setdefault(facts.arn, facts)
    skipped = refs[MAX_KEYS_PER_EVENT:]
    if skipped:
        shown = ", ".join(bounded(ref, 120) for ref in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        s.unchecked.append(f"{len(skipped)} of the {len(refs)} KMS keys involved were not checked (keyfix reads at "
                           f"most {MAX_KEYS_PER_EVENT} keys per event): {shown}")
    return list(found.values())


def add_principal(gw: AwsGateway, s: Situation, arn: str) -> PrincipalFacts | None:
    """The principal's facts, read once; None (and an unchecked note) past MAX_PRINCIPALS_PER_EVENT."""
    if arn not in s.principals and len(s.principals) >= MAX_PRINCIPALS_PER_EVENT:
        s.unchecked.append(f"principal {bounded(arn, 120)} was not checked (keyfix reads at most "
                           f"{MAX_PRINCIPALS_PER_EVENT} principals per event)")
        return None
    facts = read_principal(gw, arn)
    s.principals[facts.arn] = facts
    return facts


def bounded(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
