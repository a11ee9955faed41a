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

import trio

from objfs.rpc import PermissionDenied, RpcUnavailable
from objfs.storage.errors import ConfigError
from objfs.storage.urls import COMMON, parse, redact

log = logging.getLogger(__name__)

DEFAULT_TTL = 60.0  # seconds an accepted token is taken on trust
REQUEST_TIMEOUT = 10.0  # seconds per request to the store: Mount must not hang
MAX_TOKEN = 8192  # longer than any Swift token or SAS; bounds what we hash and send
MAX_CACHED = 4096  # accepted tokens remembered per volume, at most

# Bounds the worker threads that all volumes' checks take together, so a burst
# of Mounts cannot starve the threads the stores themselves need.
LIMITER = trio.CapacityLimiter(8)

# Statuses that say the store is struggling, not that the token is bad.
TRANSIENT_STATUS = {408, 429, 498, 499}


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
    # The SDKs load only for volumes that need them (a quicker start for the rest).
    if scheme == "swift":
        from imgr.swift_auth import SwiftAuthenticator

        return SwiftAuthenticator(url, where, params, ttl)
    from imgr.azure_auth import AzureAuthenticator

    return AzureAuthenticator(url, where, params, ttl)
