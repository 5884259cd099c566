"""Make one AWS operation fail, the way AWS would answer, without reaching anything.

botocore lets a `before-call` handler answer a request: returning (http_response, parsed)
short-circuits the HTTP call, and a parsed "Error" with status >= 300 raises ClientError
exactly as a real error response would
(https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html).
Register on a boto3 Session before the gateway creates its clients (clients copy the
session's handlers).
"""

from __future__ import annotations

from typing import Any


class _Http:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""
        self.text = ""
        self.raw = None


def fail(session: Any, service_id: str, operation: str, code: str, message: str = "", status: int = 400) -> list[str]:
    """Every `operation` of `service_id` (botocore service id, e.g. "KMS", "EC2", "IAM",
    "Auto Scaling") answers with error `code`. Returns a list the hook appends to per failure."""
    seen: list[str] = []

    def answer(**_: Any) -> Any:
        seen.append(operation)
        return _Http(status), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "fault-injected"},
        }

    session.events.register(f"before-call.{service_id.lower().replace(' ', '-')}.{operation}", answer)
    return seen


def deny(session: Any, service_id: str, operation: str, code: str = "AccessDeniedException") -> list[str]:
    return fail(session, service_id, operation, code, f"User is not authorized to perform: {operation}")


def unreachable(session: Any, service_id: str, operation: str) -> None:
    """The endpoint cannot be reached (botocore EndpointConnectionError)."""
    from botocore.exceptions import EndpointConnectionError

    def answer(**_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://unreachable.invalid")

    session.events.register(f"before-call.{service_id.lower().replace(' ', '-')}.{operation}", answer)
