"""Mount tokens: who may mount a volume.

A volume is a container named by a storage URL, and the token a client sends
with Mount is judged by whoever owns that container:

    swift://   a Swift auth token. imgr HEADs the volume's container at the
               account's storage URL with it (X-Auth-Token), so the token must
               be current and allow reading the container.
    azure://   a SAS token for the volume's container (with or without the
               leading '?'). imgr lists one page of the container with it, so
               the SAS must allow List (l); a client also needs Read, Add,
               Create, Write and Delete to work (sp=racwdl) — Azure enforces
               those on each request, not here.
    file://    the token must equal the secret imgr was configured with for
    mem://     the volume; a volume without one is refused at start.

A refused token is `PermissionDenied`; a store that cannot be asked (down,
timing out, 5xx) is `RpcUnavailable`, so nobody is told their token is wrong
because the store is down. Accepted tokens are remembered for a short TTL,
keyed by their SHA-256, so that remounts do not each cost a round trip;
refusals and failures are never remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from functools import partial
from typing import Any

import trio
from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import ContainerClient
from swiftclient.client import ClientException, get_auth, head_container, http_connection

from objfs.rpc import PermissionDenied, RpcUnavailable
from objfs.storage.azure import AzureStore
from objfs.storage.errors import ConfigError
from objfs.storage.swift import NETWORK_ERRORS, SwiftStore
from objfs.storage.urls import COMMON, parse, redact

log = logging.getLogger(__name__)

DEFAULT_TTL = 60.0  # seconds an accepted token is taken on trust
REQUEST_TIMEOUT = 10.0  # seconds per request to the store: Mount must not hang
MAX_TOKEN = 8192  # longer than any Swift token or SAS; bounds what we hash and send
MAX_CACHED = 4096  # accepted tokens remembered per volume, at most

# Bounds the worker threads that all volumes' checks take together, so a burst
# of Mounts cannot starve the threads the stores themselves need.
_limiter = trio.CapacityLimiter(8)

# Statuses that say the store is struggling, not that the token is bad.
_TRANSIENT_STATUS = {408, 429, 498, 499}


class Authenticator:
    """Judges the mount tokens of one volume; `check` raises when refused."""

    def __init__(self, url: str, ttl: float = DEFAULT_TTL) -> None:
        self.volume = redact(url)  # the only form of the URL that goes into messages
        self._ttl = ttl
        self._accepted: dict[bytes, float] = {}  # sha256(token) -> expiry (trio clock)

    async def check(self, token: str) -> None:
        """Return if `token` may mount the volume; PermissionDenied or RpcUnavailable if not."""
        if not self._plausible(token):
            # Never sent anywhere: control characters could split an HTTP header.
            raise self.refused("malformed token")
        key = hashlib.sha256(token.encode()).digest()
        now = trio.current_time()
        if self._accepted.get(key, 0.0) > now:
            return
        await self._verify(token)
        if self._ttl > 0:
            self._remember(key, now + self._ttl)

    def _remember(self, key: bytes, expiry: float) -> None:
        if len(self._accepted) >= MAX_CACHED:
            now = trio.current_time()
            self._accepted = {k: t for k, t in self._accepted.items() if t > now}
            if len(self._accepted) >= MAX_CACHED:
                self._accepted.clear()  # a flood of distinct tokens: start over
        self._accepted[key] = expiry

    def _plausible(self, token: str) -> bool:
        # Swift tokens and SAS tokens are visible ASCII; anything else is not one.
        return 0 < len(token) <= MAX_TOKEN and all(" " < c <= "~" for c in token)

    async def _verify(self, token: str) -> None:
        raise NotImplementedError

    def refused(self, why: str) -> PermissionDenied:
        log.info("mount token refused for %s: %s", self.volume, why)
        return PermissionDenied(f"mount token refused for volume {self.volume}: {why}")

    def unavailable(self, why: str) -> RpcUnavailable:
        log.warning("cannot check a mount token for %s: %s", self.volume, why)
        return RpcUnavailable(f"cannot check the mount token for volume {self.volume}: {why}")


class SecretAuthenticator(Authenticator):
    """file:// and mem:// volumes: the token is a secret shared with imgr."""

    def __init__(self, url: str, secret: str) -> None:
        super().__init__(url, ttl=0)  # a comparison costs nothing; nothing to save
        self._secret = secret.encode()

    def _plausible(self, token: str) -> bool:
        return 0 < len(token) <= MAX_TOKEN  # a secret may be any text; it is never sent

    async def _verify(self, token: str) -> None:
        if not hmac.compare_digest(token.encode(), self._secret):
            raise self.refused("not the secret configured for it")


class SwiftAuthenticator(Authenticator):
    """swift:// volumes: the token must let its holder HEAD the volume's container."""

    def __init__(self, url: str, container: str, params: dict[str, str], ttl: float) -> None:
        super().__init__(url, ttl)
        self.container = container
        self._storage_url = params.get("storage_url")
        self._credentials = (params.get("auth_url"), params.get("user"), params.get("key"))
        self._lock = trio.Lock()  # parallel first checks authenticate only once

    async def _verify(self, token: str) -> None:
        storage_url = await self._account()
        try:
            await trio.to_thread.run_sync(self._head, storage_url, token, limiter=_limiter)
        except ClientException as exc:
            raise self._judged(exc.http_status, f"Swift answered {exc.http_status}") from None
        except NETWORK_ERRORS as exc:
            raise self.unavailable(f"Swift unreachable ({type(exc).__name__})") from None

    def _head(self, storage_url: str, token: str) -> None:
        parsed, conn = http_connection(storage_url, timeout=REQUEST_TIMEOUT)
        try:
            head_container(storage_url, token, self.container, http_conn=(parsed, conn))
        finally:
            conn.close()

    def _judged(self, status: int | None, reason: str) -> Exception:
        if status == 404:
            return self.refused(f"container {self.container!r} does not exist in that account")
        if status is None or status >= 500 or status in _TRANSIENT_STATUS:
            return self.unavailable(reason)
        return self.refused(reason)  # 401, 403: not this token, or not this container

    async def _account(self) -> str:
        """The account's storage URL: given, or learnt once with imgr's own credentials."""
        async with self._lock:
            if self._storage_url is None:
                self._storage_url = await self._authenticate()
            return self._storage_url

    async def _authenticate(self) -> str:
        auth_url, user, key = self._credentials
        try:
            login = partial(get_auth, auth_version="1", timeout=REQUEST_TIMEOUT)
            storage_url, _ = await trio.to_thread.run_sync(
                login, auth_url, user, key, limiter=_limiter
            )
        except ClientException as exc:
            # imgr's own credentials, not the client's token: not the client's fault.
            log.error("imgr's Swift credentials for %s failed: %s", self.volume, exc.http_status)
            raise self.unavailable(f"imgr could not log in to Swift ({exc.http_status})") from None
        except NETWORK_ERRORS as exc:
            raise self.unavailable(f"Swift unreachable ({type(exc).__name__})") from None
        return storage_url


class AzureAuthenticator(Authenticator):
    """azure:// volumes: the token is a SAS that must let its holder list the container."""

    def __init__(self, url: str, container: str, account_url: str, ttl: float) -> None:
        super().__init__(url, ttl)
        self.container = container
        self.account_url = account_url

    async def _verify(self, token: str) -> None:
        try:
            await trio.to_thread.run_sync(self._list_one, token.lstrip("?"), limiter=_limiter)
        except HttpResponseError as exc:
            if exc.status_code is not None:
                raise self._judged(exc.status_code, _code(exc)) from None
            raise self.unavailable(f"Azure failed ({type(exc).__name__})") from None
        except (AzureError, OSError) as exc:
            # Messages of these may quote the request URL, SAS and all: type only.
            raise self.unavailable(f"Azure unreachable ({type(exc).__name__})") from None
        except ValueError:
            raise self.refused("not a SAS token") from None

    def _list_one(self, sas: str) -> None:
        options: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": REQUEST_TIMEOUT,
            "read_timeout": REQUEST_TIMEOUT,
        }
        with ContainerClient(self.account_url, self.container, credential=sas, **options) as c:
            next(iter(c.list_blobs(results_per_page=1).by_page()), None)

    def _judged(self, status: int, code: str) -> Exception:
        reason = f"Azure answered {status} {code}".rstrip()
        if status == 404:
            return self.refused(f"container {self.container!r} does not exist in that account")
        if status >= 500 or status in _TRANSIENT_STATUS:
            return self.unavailable(reason)
        return self.refused(reason)  # 403: wrong key, expired, other container, no List


def _code(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def authenticator(
    url: str, secret: str | None = None, *, ttl: float = DEFAULT_TTL
) -> Authenticator:
    """The authenticator of the volume at storage URL `url`.

    `secret` is the mount token of a file:// or mem:// volume; swift:// and
    azure:// volumes ignore it (their store judges the token). Raises
    ConfigError (a ValueError) with a one-line reason when the URL, its
    credentials or the secret do not let imgr check tokens.
    """
    scheme, where, params = parse(url)
    for key in COMMON:
        params.pop(key, None)  # tuning of imgr's own store, not of token checks
    if scheme in ("file", "mem"):
        if not secret:
            raise ConfigError(f"volume {redact(url)} needs a mount secret configured")
        return SecretAuthenticator(url, secret)
    if scheme == "swift":
        # The store's constructor validates the container and credentials, once.
        SwiftStore(where, **params)
        return SwiftAuthenticator(url, where, params, ttl)
    return AzureAuthenticator(url, where, _account_url(where, params), ttl)


def _account_url(container: str, params: dict[str, str]) -> str:
    """The account URL as objfs.storage.azure reads it from the volume's parameters."""
    # Constructing the store validates the parameters; it sends nothing and
    # opens no connection, so dropping it unclosed leaves nothing behind.
    return AzureStore(container, **params).account_url
