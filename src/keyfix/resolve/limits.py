"""Per-event bounds on the resolver's work, so one event cannot outlast the function.

An event is data anyone can shape (an EBS notification naming 3,000 keys is a valid JSON
object of 228 KB), and each key costs about five KMS reads, each principal up to a few
dozen IAM reads. The Lambda has 60 s (template.yaml `Timeout`) and keyfix starts no write
with less than 15 s left (remedies.apply), so the reads of one event must stay well inside
45 s even when AWS throttles (botocore's standard retry mode backs off up to 20 s per call:
https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html).

What a bound stops is never silently dropped: the resolver records it in
`Situation.unchecked`, and the diagnosis reports it as an `undetermined` finding saying what
was not checked. README "Known limits" lists these numbers.
"""

from __future__ import annotations

# Distinct KMS keys read per event. A launch uses one key per encrypted volume; an instance
# has at most a few dozen volumes, and real failures name one or two keys.
MAX_KEYS_PER_EVENT = 10

# Distinct principals (users, roles, service-linked roles) whose identity policies are read
# per event. Every trigger names one; the bound is there for the day one names more.
MAX_PRINCIPALS_PER_EVENT = 4

# AWS calls the resolver may make for one event (cached reads are free; each page of a
# paginated read counts). The seed scenarios cost 9 to 16 (bench/README.md, "AWS calls per
# seed scenario"); ten keys and four principals fit in this with room to spare.
MAX_AWS_CALLS_PER_EVENT = 120

# The error code a refused call carries (keyfix's own, never AWS's).
BUDGET_EXHAUSTED = "KeyfixCallBudgetExhausted"
