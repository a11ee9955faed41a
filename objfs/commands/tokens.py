"""The mount token a client presents to imgr for a volume, per backend (see imgr/auth.py).

    file://, mem://   the secret imgr was configured with for the volume
    swift://          a Swift auth token: the URL's own, or one got with its credentials
    azure://          a container SAS allowing racwdl: the URL's own, or one signed with its key

Blocking (a Swift login is a request): call it from a worker thread in trio code.
The Swift and Azure SDKs are imported only for URLs that need them: every
objfs verb imports this module, and the SDKs take longer to load than most
verbs take to run.
"""

from __future__ import annotations

from objfs.storage import AuthError, ConfigError, Unavailable
from objfs.storage.urls import COMMON, parse, redact

LOGIN_TIMEOUT = 15.0  # seconds for a Swift login


def mount_token(url: str, secret: str) -> str:
    """The token imgr accepts for the volume at `url` (whose file:// secret is `secret`).

    ConfigError for a malformed URL, AuthError when Swift refuses the
    credentials, Unavailable when it cannot be reached.
    """
    scheme, where, params = parse(url)
    for key in COMMON:
        params.pop(key, None)
    if scheme in ("file", "mem"):
        return secret
    if scheme == "azure":
        from objfs.storage.azure import AzureStore

        return AzureStore(where, **params).container_sas()
    if params.get("token") and params.get("storage_url"):
        return params["token"]
    if not all(params.get(key) for key in ("auth_url", "user", "key")):
        raise ConfigError("a swift URL needs auth_url, user and key (or storage_url and token)")
    return _swift_login(url, params)


def _swift_login(url: str, params: dict[str, str]) -> str:
    from swiftclient.client import ClientException, get_auth

    from objfs.storage.swift import NETWORK_ERRORS

    try:
        _, token = get_auth(
            params["auth_url"], params["user"], params["key"], auth_version="1",
            timeout=LOGIN_TIMEOUT,
        )  # fmt: skip
    except ClientException as exc:
        if exc.http_status is None or exc.http_status >= 500:
            raise Unavailable(f"Swift login failed ({exc.http_status})", redact(url)) from None
        raise AuthError(f"Swift refused the login ({exc.http_status})", redact(url)) from None
    except NETWORK_ERRORS as exc:
        raise Unavailable(f"Swift unreachable ({type(exc).__name__})", redact(url)) from None
    return token
