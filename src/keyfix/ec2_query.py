"""An instance's state reason by one signed EC2 Query API request, without building a boto3 client.

Why: the EC2 state-change rule fires for every stop in the account (keyfix.irrelevant), and
building boto3's EC2 client loads the SDK's largest service model: about 2x `import boto3`
of CPU on a cold start, for one field. DescribeInstances is a documented Query API
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html; Query
requests, POST with Action and Version=2016-11-15:
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html), signed with
Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html),
so stdlib hashlib/hmac and http.client suffice.

It answers only where it is sure to reach what boto3 would, and returns None ("ask boto3")
on any doubt, before sending anything:
- credentials: the environment's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN),
  the first provider of the SDKs' chain and what Lambda sets
  (https://docs.aws.amazon.com/sdkref/latest/guide/feature-static-credentials.html,
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime);
  none, or a profile named (AWS_PROFILE), is a doubt;
- endpoint: AWS_ENDPOINT_URL_EC2, else AWS_ENDPOINT_URL, else https://ec2.REGION.amazonaws.com
  (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html); a shared config
  file with content (it may set endpoint_url, a proxy, retries), AWS_IGNORE_CONFIGURED_ENDPOINT_URLS,
  FIPS or dual-stack endpoints, a CA bundle, a proxy, or a Region outside the `aws` partition
  are doubts;
and after sending: an answer it cannot read, an AWS error (the full path reports it in its own
words), or a request that kept failing after the retries.

Retries: at most 3 attempts (the standard retry mode's default) on a connection error, a 5xx,
or a throttling code, with exponential backoff and full jitter
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import random
import time
from typing import Any
from urllib.parse import quote, urlsplit

API_VERSION = "2016-11-15"
MAX_ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0
_BACKOFF_BASE = 0.1  # seconds; the standard mode's base delay is up to 1 s times 2^attempt
# The throttling codes of the standard retry mode (as keyfix.resolve.gateway.THROTTLING_CODES).
_THROTTLING = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled",
                         "RequestThrottledException", "TooManyRequestsException", "ThrottledException"})
# Settings under which botocore could reach another endpoint or authenticate otherwise.
_DOUBTFUL_SETTINGS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                      "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_CA_BUNDLE",
                      "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_NAMESPACE_END = "}"

# Every request actually sent (one per API call, retries inside): bench/irrelevant.py counts them.
SENT: list[str] = []


class Doubt(Exception):
    """The regular path (boto3) must decide; the message says why."""


def state_reason(region: str, instance_id: str, environ: Any = None) -> dict[str, str]:
    """{"state", "code", "message"} of the instance's StateReason; raises Doubt."""
    environ = os.environ if environ is None else environ
    endpoint, credentials = _endpoint(region, environ), _credentials(environ)
    body = f"Action=DescribeInstances&Version={API_VERSION}&InstanceId.1={quote(instance_id, safe='')}"
    text = _post(endpoint, region, credentials, body)
    return _read_instance(text, instance_id)


def _in_process_mock() -> bool:
    """moto's in-process mock intercepts botocore's requests only: a raw one would escape it."""
    import sys

    models = sys.modules.get("moto.core.models")
    stubber = getattr(models, "botocore_stubber", None)
    return bool(getattr(stubber, "enabled", False))


def _credentials(environ: Any) -> tuple[str, str, str | None]:
    if _in_process_mock():
        raise Doubt("an in-process AWS mock is active")
    for name in _DOUBTFUL_SETTINGS:
        if environ.get(name):
            raise Doubt(f"{name} is set")
    config = environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config")
    try:
        if os.path.getsize(config) > 0:
            raise Doubt(f"shared config file {config} has settings")
    except OSError:
        pass  # none: nothing configured there
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise Doubt("no credentials in the environment")
    return key, secret, environ.get("AWS_SESSION_TOKEN") or None


def _endpoint(region: str, environ: Any) -> str:
    if not region or not all(c.isalnum() or c == "-" for c in region):
        raise Doubt(f"region {region!r}")
    url = environ.get("AWS_ENDPOINT_URL_EC2") or environ.get("AWS_ENDPOINT_URL")
    if url:
        return url
    if region.startswith(("cn-", "us-gov-", "us-iso", "eu-isoe-", "eusc-")):
        raise Doubt(f"region {region} is outside the aws partition")
    return f"https://ec2.{region}.amazonaws.com"


def _post(endpoint: str, region: str, credentials: tuple[str, str, str | None], body: str) -> str:
    import http.client  # lazy: only an ordinary stop pays for it

    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise Doubt(f"endpoint {endpoint!r}")
    path = parts.path or "/"
    default_port = 443 if parts.scheme == "https" else 80
    host = parts.hostname if parts.port in (None, default_port) else f"{parts.hostname}:{parts.port}"
    SENT.append("ec2:DescribeInstances")
    last = "no attempt"
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, _BACKOFF_BASE * 2**attempt))
        headers = _signed_headers(host, path, region, credentials, body.encode())
        factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = factory(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request("POST", path, body=body.encode(), headers=headers)
            response = connection.getresponse()
            status, text = response.status, response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as err:
            last = f"{type(err).__name__}: {err}"
            continue
        finally:
            connection.close()
        if status == 200:
            return text
        code = _error_code(text)
        last = f"HTTP {status} {code}"
        if status >= 500 or code in _THROTTLING:
            continue
        raise Doubt(last)  # denied, not found, ...: the full path reads and reports it
    raise Doubt(f"no answer after {MAX_ATTEMPTS} attempts ({last})")


def _signed_headers(host: str, path: str, region: str, credentials: tuple[str, str, str | None],
                    payload: bytes) -> dict[str, str]:
    key, secret, token = credentials
    now = datetime.datetime.now(datetime.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "host": host,
               "x-amz-date": amz_date}
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    canonical = "\n".join([
        "POST", quote(path, safe="/~"), "",
        *(f"{name}:{headers[name].strip()}" for name in names), "",
        ";".join(names), hashlib.sha256(payload).hexdigest(),
    ])
    scope = f"{day}/{region}/ec2/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = ("AWS4" + secret).encode()
    for part in (day, region, "ec2", "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers


def _children(element: Any, name: str) -> list[Any]:
    return [child for child in element if child.tag.rpartition(_NAMESPACE_END)[2] == name]


def _child(element: Any, name: str) -> Any:
    found = _children(element, name)
    return found[0] if found else None


def _text(element: Any, *path: str) -> str:
    for name in path:
        element = None if element is None else _child(element, name)
    return "" if element is None or element.text is None else element.text


def _error_code(text: str) -> str:
    """The Code of an error answer, `<Response><Errors><Error><Code>`
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html); "" if none."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return ""
    for element in root.iter():
        if element.tag.rpartition(_NAMESPACE_END)[2] == "Code":
            return element.text or ""
    return ""


def _items(element: Any, name: str) -> list[Any]:
    """The `item`s of a child set (an absent set has none)."""
    found = None if element is None else _child(element, name)
    return [] if found is None else _children(found, "item")


def _read_instance(text: str, instance_id: str) -> dict[str, str]:
    """reservationSet/item/instancesSet/item of the instance: instanceState/name and stateReason
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise Doubt(f"unreadable answer: {err}") from None
    if root.tag.rpartition(_NAMESPACE_END)[2] != "DescribeInstancesResponse":
        raise Doubt(f"unexpected answer {root.tag!r}")
    for reservation in _items(root, "reservationSet"):
        for instance in _items(reservation, "instancesSet"):
            if _text(instance, "instanceId") == instance_id:
                return {
                    "state": _text(instance, "instanceState", "name"),
                    "code": _text(instance, "stateReason", "code"),
                    "message": _text(instance, "stateReason", "message"),
                }
    raise Doubt(f"instance {instance_id} not in the answer")
