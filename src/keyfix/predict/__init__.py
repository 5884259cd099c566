"""Predict breakage before it happens: `keyfix scan`, the scheduled sweep, key-change checks.

Issue #11, items 1-4. Every check runs the event path's own pieces on a subject (an Auto
Scaling group or a stopped instance) without waiting for a failure event:

    subjects.py   which groups / instances to check, and whether each has failed already
                  (a recent Failed/Cancelled scaling activity with a KMS reason, a stopped
                  instance whose StateReason is KMS-related)
    check.py      resolve (keyfix.resolve, the same ASG resolution as a launch failure) ->
                  diagnose -> findings, `predicted=True` when nothing has failed yet
    act.py        carry_out / notify / idempotency, shared with events (keyfix.pipeline)
    sweep.py      the loop over every subject: one gateway (each key, template version,
                  image and principal read once), paging, time budget, throttling back-off,
                  a cursor to carry on in the next invocation (cursor.py)
    scan.py       the keyfix.scan/1 document, its text form and exit status
    keychange.py  a CloudTrail change -> the groups it touches -> proposals only
"""
