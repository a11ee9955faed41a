"""azure:// mount tokens: a SAS that may list the volume's container."""

from __future__ import annotations

from typing import Any

import trio
from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import ContainerClient

from imgr.auth import LIMITER, REQUEST_TIMEOUT, TRANSIENT_STATUS, Authenticator
from objfs.storage.azure import AzureStore


class AzureAuthenticator(Authenticator):
    """azure:// volumes: the token is a SAS that must let its holder list the container."""

    def __init__(self, url: str, container: str, params: dict[str, str], ttl: float) -> None:
        super().__init__(url, ttl)
        self.container = container
        # Constructing the store validates the parameters; it sends nothing and
        # opens no connection, so dropping it unclosed leaves nothing behind.
        self.account_url = AzureStore(container, **params).account_url

    async def _verify(self, token: str) -> None:
        try:
            await trio.to_thread.run_sync(self._list_one, token.lstrip("?"), limiter=LIMITER)
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
        if status >= 500 or status in TRANSIENT_STATUS:
            return self.unavailable(reason)
        return self.refused(reason)  # 403: wrong key, expired, other container, no List


def _code(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")
