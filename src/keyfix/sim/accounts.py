"""Acting as a given account against moto.

moto 5 picks the account of a request in this order (moto.core.responses.BaseResponse.
get_current_account): the MOTO_ACCOUNT_ID environment variable, then the
`x-moto-account-id` request header, then the account owning the access key (IAM access
keys, and STS AssumeRole credentials map to the role's account), else 123456789012.
MOTO_ACCOUNT_ID overrides everything for every request, so multi-account setups use the
header: a boto3 Session whose clients add it.
"""

from __future__ import annotations

from typing import Any

ACCOUNT_HEADER = "x-moto-account-id"


_loader: Any = None


def _shared_loader() -> Any:
    """One botocore data loader for every session made here: loading the service models
    again for each new session is most of what a fresh session costs."""
    global _loader
    if _loader is None:
        from botocore.loaders import create_loader

        _loader = create_loader()
    return _loader


def session(account: str, region: str = "us-east-1") -> Any:
    """A new boto3 Session whose clients act in `account` (in-process mock_aws or a moto server)."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    loader = _shared_loader()
    core.register_component("data_loader", loader)
    sess = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region, botocore_session=core
    )
    # boto3 appends its own data path to the loader of every session it wraps.
    loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))

    def add_account_header(request: Any, **_: Any) -> None:
        request.headers[ACCOUNT_HEADER] = account

    sess.events.register("before-sign", add_account_header)
    return sess


def client(service: str, account: str, region: str = "us-east-1", **kwargs: Any) -> Any:
    return session(account, region).client(service, **kwargs)
