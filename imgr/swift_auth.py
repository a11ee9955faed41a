"""swift:// mount tokens: a Swift auth token that may HEAD the volume's container."""

from __future__ import annotations

import logging
from functools import partial

import trio
from swiftclient.client import ClientException, get_auth, head_container, http_connection

from imgr.auth import LIMITER, REQUEST_TIMEOUT, TRANSIENT_STATUS, Authenticator
from objfs.storage.swift import NETWORK_ERRORS, SwiftStore

log = logging.getLogger(__name__)


class SwiftAuthenticator(Authenticator):
    """swift:// volumes: the token must let its holder HEAD the volume's container."""

    def __init__(self, url: str, container: str, params: dict[str, str], ttl: float) -> None:
        SwiftStore(container, **params)  # validates the container and credentials, once
        super().__init__(url, ttl)
        self.container = container
        self._storage_url = params.get("storage_url")
        self._credentials = (params.get("auth_url"), params.get("user"), params.get("key"))
        self._lock = trio.Lock()  # parallel first checks authenticate only once

    async def _verify(self, token: str) -> None:
        storage_url = await self._account()
        try:
            await trio.to_thread.run_sync(self._head, storage_url, token, limiter=LIMITER)
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
        if status is None or status >= 500 or status in TRANSIENT_STATUS:
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
                login, auth_url, user, key, limiter=LIMITER
            )
        except ClientException as exc:
            # imgr's own credentials, not the client's token: not the client's fault.
            log.error("imgr's Swift credentials for %s failed: %s", self.volume, exc.http_status)
            raise self.unavailable(f"imgr could not log in to Swift ({exc.http_status})") from None
        except NETWORK_ERRORS as exc:
            raise self.unavailable(f"Swift unreachable ({type(exc).__name__})") from None
        return storage_url
