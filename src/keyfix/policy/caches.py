"""Every cache the model keeps, emptied in one call.

The model caches parsed policies (policy.py), Principal elements and Condition blocks
(statement.py), interned patterns and their matchers
(patterns.py), interned Action/Resource lists with their per-value answers (statement.py)
parsed callers (principals.py) and the context keys a caller implies (request.py). None of them changes a decision; emptying them gives
the state of a process meeting its policies for the first time (bench/policy_worker.py's
"cold" pass, and tests that want that state).
"""

from __future__ import annotations

import re


def clear() -> None:
    from keyfix.policy import patterns, policy, principals, request, statement

    policy._cache.clear()
    statement.clear_element_caches()
    for cached in (
        patterns._compile,
        patterns._matcher,
        patterns._pattern,
        statement._action_set,
        statement._resource_set,
        principals.parse_caller,
        request._derived,
    ):
        cached.cache_clear()
    re.purge()
