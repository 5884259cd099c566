"""Options every `keyfix` command takes, as the AWS CLI has them, and the errors that are the
user's to fix.

`--region`, `--profile` and `--endpoint-url` mean what they mean to the AWS CLI
(https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-options.html). keyfix makes
every client from boto3's default configuration, so each flag is applied as the environment
variable boto3 reads anyway (the variables keep working; a flag wins over its variable):
`AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_PROFILE`, and `AWS_ENDPOINT_URL`, the SDKs' global
endpoint setting (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
They are set for the command's duration only and put back afterwards.

A command added later gets the options by being created with `add_command(sub, name, ...)`;
they are accepted before the command's name as well (`keyfix --region eu-west-1 handle ...`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# The command line's default: what goes wrong, not each step (-v for more).
DEFAULT_LOG_LEVEL = "WARNING"

# Exit statuses (docs/contract.md). A missing credential, profile, Region or table is a
# problem of the caller's environment that keyfix cannot get past, like an unreadable
# event: 2, with what to do on stderr. 1 stays "keyfix itself failed".
EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2


def _add_options(parser: argparse.ArgumentParser, default: Any) -> None:
    group = parser.add_argument_group("AWS and output options (any command, before or after its name)")
    group.add_argument("--region", default=default, metavar="REGION",
                       help="AWS Region to use (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)")
    group.add_argument("--profile", default=default, metavar="NAME",
                       help="named profile of the AWS config/credentials files (default: AWS_PROFILE)")
    group.add_argument("--endpoint-url", default=default, metavar="URL",
                       help="send every AWS call to this URL, e.g. a moto server (default: AWS_ENDPOINT_URL)")
    group.add_argument("--log-level", default=default, type=str.upper, choices=LOG_LEVELS,
                       help=f"log level on stderr (default {DEFAULT_LOG_LEVEL}; -v INFO, -vv DEBUG, -q ERROR)")
    group.add_argument("-v", "--verbose", action="count", default=default,
                       help="more log output on stderr (repeatable)")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="only errors on stderr")


def top_level_options(parser: argparse.ArgumentParser) -> None:
    """The options on the `keyfix` parser itself, before any command name."""
    _add_options(parser, None)


def command_options() -> argparse.ArgumentParser:
    """A parent parser for each command. SUPPRESS: an option not given after the command's
    name leaves what was given before it (argparse would otherwise reset it to None)."""
    parent = argparse.ArgumentParser(add_help=False)
    _add_options(parent, argparse.SUPPRESS)
    return parent


def add_command(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """`sub.add_parser(name, ...)` with the common options; use it for every command."""
    parents = [command_options(), *kwargs.pop("parents", [])]
    return sub.add_parser(name, parents=parents, **kwargs)


def log_level(args: argparse.Namespace) -> str:
    """--log-level wins; then -q; then -v/-vv; else the default."""
    if getattr(args, "log_level", None):
        return args.log_level
    if getattr(args, "quiet", None):
        return "ERROR"
    verbose = getattr(args, "verbose", None) or 0
    return "DEBUG" if verbose >= 2 else "INFO" if verbose == 1 else DEFAULT_LOG_LEVEL


def aws_environment(args: argparse.Namespace) -> dict[str, str]:
    """The environment variables the AWS options stand for."""
    values: dict[str, str] = {}
    if getattr(args, "region", None):
        values["AWS_REGION"] = values["AWS_DEFAULT_REGION"] = args.region
    if getattr(args, "profile", None):
        values["AWS_PROFILE"] = args.profile
        # Static keys in the environment come before any profile in boto3's chain
        # (https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-envvars.html);
        # --profile on the command line is the AWS CLI's exception, so it is here too.
        values.update(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="", AWS_SESSION_TOKEN="")
    if getattr(args, "endpoint_url", None):
        values["AWS_ENDPOINT_URL"] = args.endpoint_url
    return values


@contextlib.contextmanager
def applied(args: argparse.Namespace) -> Iterator[None]:
    """Apply the common options for one command, and undo them afterwards."""
    env = aws_environment(args)
    level = log_level(args)
    env["POWERTOOLS_LOG_LEVEL"] = level  # the handler's Powertools logger, when a command uses it
    saved = {name: os.environ.get(name) for name in env}
    logger = logging.getLogger("keyfix")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("keyfix: %(levelname)s %(name)s: %(message)s"))
    old_level, old_propagate = logger.level, logger.propagate
    for name, value in env.items():
        if value == "":
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    logger.setLevel(level)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---------------------------------------------------------------- errors that are the user's

_NO_CREDENTIALS = ("no AWS credentials found. Give keyfix credentials as for the AWS CLI: --profile NAME "
                   "(or AWS_PROFILE), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or `aws configure` / "
                   "`aws sso login`; against a moto server, any dummy keys do")
_DYNAMODB_ITEM_CALLS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable",
                        "TransactWriteItems", "BatchGetItem", "BatchWriteItem"}


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def user_error(exc: BaseException, table_name: str | None = None) -> str | None:
    """What the user must change, when `exc` (or what caused it) is their environment's
    doing rather than keyfix's; None for anything else (an internal failure)."""
    from botocore import exceptions as bce

    for e in _chain(exc):
        if isinstance(e, (bce.NoCredentialsError, bce.PartialCredentialsError)):
            return _NO_CREDENTIALS
        if isinstance(e, bce.ProfileNotFound):
            return f"{e}: check --profile / AWS_PROFILE (`aws configure list-profiles` lists them)"
        if isinstance(e, (bce.SSOTokenLoadError, bce.TokenRetrievalError, bce.UnauthorizedSSOTokenError)):
            return f"{e}: run `aws sso login` for this profile, then try again"
        if isinstance(e, bce.NoRegionError):
            return "no AWS Region configured: pass --region REGION or set AWS_REGION"
        if isinstance(e, bce.EndpointConnectionError):
            return f"{e}: check --endpoint-url / AWS_ENDPOINT_URL and the network"
        if isinstance(e, bce.ClientError):
            error = e.response.get("Error", {})
            if error.get("Code") == "ResourceNotFoundException" and e.operation_name in _DYNAMODB_ITEM_CALLS:
                region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "the configured Region"
                named = f"table {table_name!r}" if table_name else "the DynamoDB table"
                return (f"{named} does not exist in {region}: set KEYFIX_TABLE_NAME (or --table) to the stack's "
                        "TableName output and --region to the stack's Region, or unset it to run without a table")
    return None


def credentials_problem() -> str | None:
    """Checked before a command that calls AWS does anything: boto3 finds no credentials
    only when the first call is signed, and a reader that meets that error reports it as a
    finding it could not read. Resolving the chain here makes no AWS call (static keys and
    profiles are local; a container or instance provider answers on the local network)."""
    import boto3
    from botocore import exceptions as bce

    try:
        credentials = boto3.Session().get_credentials()
    except bce.BotoCoreError as exc:
        return user_error(exc) or f"cannot load AWS credentials: {exc}"
    return None if credentials is not None else _NO_CREDENTIALS
