"""The mount token a client presents to imgr for a volume, per backend (see imgr/auth.py).

    file://, mem://   the secret imgr was configured with for the volume
    swift://          a Swift auth token: the URL's own, or one got with its credentials
    azure://          a container SAS allowing racwdl: the URL's own, or one signed with its key

Blocking (a Swift login is a request): call it from a worker thread in trio code.
"""

from __future__ import annotations

from swiftclient.client import ClientException, get_auth

from objfs.storage import AuthError, ConfigError, Unavailable
from objfs.storage.azure import AzureStore
from objfs.storage.swift import NETWORK_ERRORS
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
        return AzureStore(where, **params).container_sas()
    if params.get("token") and params.get("storage_url"):
        return params["token"]
    if not all(params.get(key) for key in ("auth_url", "user", "key")):
        raise ConfigError("a swift URL needs auth_url, user and key (or storage_url and token)")
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
