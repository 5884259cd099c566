"""A JSON document's content as bytes, the key of the model's caches of parsed documents.

marshal format 2 has no back-references and no interning flags, so its bytes depend on the
content and types alone (format 3 and later mark objects by their reference count); it is
2-3x faster than json.dumps on a policy, and computing the key was a fifth of a warm
decision. Equal bytes only for equal documents with the same key order and the same types
(True, 1 and 1.0 differ). Anything that is not plain data (a str or dict subclass, a custom
object, a structure nested deeper than marshal goes) has no key: the caller parses it
without the cache, and the parser says what is wrong with it.
"""

from __future__ import annotations

import marshal
from typing import Any

_MARSHAL_VERSION = 2


def content_key(doc: Any) -> bytes | None:
    try:
        return marshal.dumps(doc, _MARSHAL_VERSION)
    except ValueError:
        return None
