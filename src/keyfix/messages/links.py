"""Console deep links for a finding: the key, the group / instance / volume, the function's
log events for this event, and the X-Ray trace.

AWS documents no format for console URLs; these are the console's routes as they are today
(AWS's pages do not decide them, so a changed route breaks a link, never a report). The
console's host per partition is documented:
https://docs.aws.amazon.com/general/latest/gr/rande.html#regional-endpoints (consoles of
aws-cn and aws-us-gov: https://docs.amazonaws.cn/en_us/aws/latest/userguide/endpoints-Beijing.html,
https://docs.aws.amazon.com/govcloud-us/latest/UserGuide/using-govcloud-endpoints.html).
Lambda sets AWS_LAMBDA_LOG_GROUP_NAME and _X_AMZN_TRACE_ID in the function's environment:
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import quote

from keyfix.arns import Arn, ArnError, group_name_of, partition_of
from keyfix.report import Finding, Report

CONSOLE_HOSTS = {"aws": "console.aws.amazon.com", "aws-cn": "console.amazonaws.cn",
                 "aws-us-gov": "console.amazonaws-us-gov.com"}
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_TRACE_ROOT = re.compile(r"Root=(1-[0-9a-f]{8}-[0-9a-f]{24})")


def _arn(text: str | None) -> Arn | None:
    try:
        return Arn.parse(text) if text else None
    except ArnError:
        return None


def _console(partition: str, region: str) -> str | None:
    host = CONSOLE_HOSTS.get(partition)
    if host is None or not _REGION.match(region):
        return None
    # The aws partition's consoles are regional hosts; the others have one host each.
    return f"https://{region}.{host}" if partition == "aws" else f"https://{host}"


def _cloudwatch_fragment(text: str) -> str:
    # The CloudWatch console's fragment encodes twice and writes '%' as '$'.
    return quote(quote(text, safe=""), safe="").replace("%", "$")


def key_link(key_arn: str | None) -> str | None:
    arn = _arn(key_arn)
    if arn is None or arn.service != "kms" or not arn.resource_id:
        return None
    base = _console(arn.partition, arn.region)
    return base and f"{base}/kms/home?region={arn.region}#/kms/keys/{quote(arn.resource_id, safe='')}"


def resource_link(resource: str | None, region: str | None = None) -> str | None:
    """A group, instance or volume ARN (or a bare instance / volume id with `region`)."""
    arn = _arn(resource)
    partition, region = (arn.partition, arn.region) if arn else ("aws", region or "")
    base = _console(partition, region)
    if base is None or not resource:
        return None
    ec2 = f"{base}/ec2/home?region={region}#"
    name = group_name_of(resource)
    if name is not None:
        return f"{ec2}AutoScalingGroupDetails:id={quote(name, safe='')};view=details"
    tail = resource.rsplit("/", 1)[-1]
    if tail.startswith("i-"):
        return f"{ec2}InstanceDetails:instanceId={quote(tail, safe='')}"
    if tail.startswith("vol-"):
        return f"{ec2}VolumeDetails:volumeId={quote(tail, safe='')}"
    return None


def log_link(event_id: str, region: str, env: Mapping[str, str] | None = None) -> str | None:
    """The function's log events that mention this event id (the correlation id of every line)."""
    env = os.environ if env is None else env
    group = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
    base = _console(partition_of(region), region) if group else None
    if base is None or not event_id:
        return None
    query = _cloudwatch_fragment("?filterPattern=") + _cloudwatch_fragment(f'"{event_id}"')
    return f"{base}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{_cloudwatch_fragment(group)}/log-events{query}"


def trace_link(region: str, env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    found = _TRACE_ROOT.search(env.get("_X_AMZN_TRACE_ID", ""))
    base = _console(partition_of(region), region) if found else None
    return base and f"{base}/cloudwatch/home?region={region}#xray:traces/{found.group(1)}"


def report_region(report: Report, env: Mapping[str, str] | None = None) -> str:
    for finding in report.findings:
        for text in (finding.resource, finding.key_arn):
            arn = _arn(text)
            if arn and _REGION.match(arn.region or ""):
                return arn.region
    env = os.environ if env is None else env
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""


def finding_links(finding: Finding, region: str) -> dict[str, str]:
    links = {"key": key_link(finding.key_arn), "resource": resource_link(finding.resource, region)}
    return {name: url for name, url in links.items() if url}


def report_links(report: Report, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """{"logs": ..., "trace": ...} for the run itself (empty outside Lambda)."""
    region = report_region(report, env)
    links = {"logs": log_link(report.event.id, region, env), "trace": trace_link(region, env)}
    return {name: url for name, url in links.items() if url}
