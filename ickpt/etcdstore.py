"""EtcdStore: a checkpoint store kept in etcd (v3), spoken to through its JSON gateway.

Keys live under a prefix (default ``objfs/ickpt/``). A key's version is its etcd
``mod_revision``: etcd's store-wide revision, so versions strictly increase and are never
reused. Every mutation is one ``/v3/kv/txn`` comparing the key's ``mod_revision`` with the
expected version (an absent key has ``mod_revision`` 0); etcd answers only after a quorum
has the change in its raft log, which is the durability guarantee.

Values are stored as ``nonce (16 random bytes) || value``; ``get`` strips the nonce.

Fail-over: the endpoints are tried in turn on a connection error, a timeout or a 5xx
answer, until ``retry_deadline``; then ``StoreError`` names every endpoint's last error.

Lost replies: a txn that was sent but whose answer was lost may have been applied; its
retry then fails the comparison although the first attempt succeeded. The nonce tells
such a success from a real conflict: after a failed retry we walk back the key's history
(``range`` at older revisions, down to the expected version / the last revision this client
saw before the put) looking for a revision holding our nonce; if found, the put succeeded
and its revision is returned. The walk is exact unless etcd compacted those revisions, or
it needs more than ``MAX_HISTORY_STEPS`` reads: then ``StoreError`` says the outcome is
unknown and the caller must re-read the key before deciding. A lost-reply ``delete``
whose retry finds the key absent is reported as a success (the key is gone either way).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Sequence

import requests
import trio

from ickpt.store import (
    CheckpointStore,
    Conflict,
    StoreError,
    check_key,
    check_value,
    check_version,
)

log = logging.getLogger(__name__)

NONCE_BYTES = 16
DEFAULT_PREFIX = "objfs/ickpt/"
CONNECT_TIMEOUT = 1.0
MAX_HISTORY_STEPS = 256


class _Unavailable(Exception):
    """One endpoint did not answer usefully; ``maybe_applied`` if the request may have run."""

    def __init__(self, message: str, maybe_applied: bool) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(raw: bytes) -> bytes:
    """The etcd range_end selecting every key that starts with raw."""
    stripped = raw.rstrip(b"\xff")
    if not stripped:
        return b"\0"  # every key
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _never_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return type(reason).__name__ == "NewConnectionError"


class EtcdStore(CheckpointStore):
    """A CheckpointStore over an etcd cluster (see the module docstring)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 3.0,
        retry_deadline: float = 15.0,
    ) -> None:
        if not endpoints:
            raise ValueError("EtcdStore needs at least one endpoint")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.prefix = prefix.encode("utf-8")
        self.timeout = timeout
        self.retry_deadline = retry_deadline
        self._current = 0
        self._last_revision = 0
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    # ---------------------------------------------------------------- transport

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # no proxy variables may reroute the cluster
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _post(self, endpoint: str, path: str, body: dict) -> dict:
        """One request to one endpoint (blocking; runs in a worker thread)."""
        try:
            resp = self._session().post(
                endpoint + path, json=body, timeout=(CONNECT_TIMEOUT, self.timeout)
            )
        except requests.RequestException as exc:
            raise _Unavailable(f"{type(exc).__name__}: {exc}", not _never_sent(exc)) from exc
        if resp.status_code >= 500:
            raise _Unavailable(f"HTTP {resp.status_code}: {resp.text[:200]}", True)
        if resp.status_code != 200:
            raise StoreError(f"etcd {endpoint}{path} answered {resp.status_code}: {resp.text}")
        return resp.json()

    async def _call(self, path: str, body: dict) -> tuple[dict, bool]:
        """POST to the first endpoint that answers; also say if an earlier try may have run."""
        errors: dict[str, str] = {}
        maybe_applied, pause = False, 0.02
        with trio.move_on_after(self.retry_deadline):
            while True:
                for _ in self.endpoints:
                    endpoint = self.endpoints[self._current]
                    try:
                        reply = await trio.to_thread.run_sync(self._post, endpoint, path, body)
                    except _Unavailable as exc:
                        errors[endpoint] = str(exc)
                        maybe_applied = maybe_applied or exc.maybe_applied
                        log.info("etcd %s failed (%s); trying the next endpoint", endpoint, exc)
                        self._current = (self._current + 1) % len(self.endpoints)
                        continue
                    self._note_revision(reply)
                    return reply, maybe_applied
                await trio.sleep(pause)
                pause = min(pause * 2, 0.5)
        detail = "; ".join(f"{e}: {msg}" for e, msg in errors.items())
        raise StoreError(f"no etcd endpoint answered within {self.retry_deadline:g} s ({detail})")

    def _note_revision(self, reply: dict) -> None:
        revision = int(reply.get("header", {}).get("revision", 0))
        self._last_revision = max(self._last_revision, revision)

    # ---------------------------------------------------------------- helpers

    def _full_key(self, key: str) -> bytes:
        return self.prefix + check_key(key)

    async def _range(self, raw: bytes, revision: int = 0) -> dict | None:
        body: dict = {"key": _b64(raw)}
        if revision:
            body["revision"] = str(revision)
        reply, _ = await self._call("/v3/kv/range", body)
        kvs = reply.get("kvs", [])
        return kvs[0] if kvs else None

    async def _txn(self, raw: bytes, expected: int, success: dict) -> tuple[dict, bool]:
        compare = {"key": _b64(raw), "target": "MOD", "result": "EQUAL"}
        compare["mod_revision"] = str(expected)
        body = {
            "compare": [compare],
            "success": [success],
            "failure": [{"request_range": {"key": _b64(raw)}}],
        }
        return await self._call("/v3/kv/txn", body)

    @staticmethod
    def _failed_current(reply: dict) -> int:
        kvs = reply["responses"][0]["response_range"].get("kvs", [])
        return int(kvs[0]["mod_revision"]) if kvs else 0

    async def _find_own_write(self, raw: bytes, nonce: bytes, floor: int, top: int) -> int | None:
        """Revision at which our nonce was written to raw after floor, if it was."""
        revision = top
        for _ in range(MAX_HISTORY_STEPS):
            if revision <= floor:
                return None
            kv = await self._range(raw, revision)
            if kv is None:
                revision -= 1
                continue
            mod = int(kv["mod_revision"])
            if _unb64(kv.get("value", "")).startswith(nonce):
                return mod
            revision = mod - 1
        raise StoreError(
            f"outcome of put on {raw!r} unknown after a lost reply: re-read the key before retrying"
        )

    # ---------------------------------------------------------------- API

    async def get(self, key: str) -> tuple[int, bytes] | None:
        kv = await self._range(self._full_key(key))
        if kv is None:
            return None
        return int(kv["mod_revision"]), _unb64(kv.get("value", ""))[NONCE_BYTES:]

    async def put(self, key: str, value: bytes, expected_version: int) -> int:
        raw = self._full_key(key)
        check_value(value)
        check_version(expected_version)
        floor = max(expected_version, self._last_revision)
        nonce = os.urandom(NONCE_BYTES)
        put = {"request_put": {"key": _b64(raw), "value": _b64(nonce + bytes(value))}}
        reply, maybe_applied = await self._txn(raw, expected_version, put)
        if reply.get("succeeded"):
            return int(reply["header"]["revision"])
        if maybe_applied:
            top = int(reply["header"]["revision"])
            mine = await self._find_own_write(raw, nonce, floor, top)
            if mine is not None:
                log.info("put on %r: lost reply, but the write had succeeded at %d", key, mine)
                return mine
        raise Conflict(self._failed_current(reply))

    async def delete(self, key: str, expected_version: int) -> None:
        raw = self._full_key(key)
        check_version(expected_version)
        if expected_version == 0:
            current = await self.get(key)
            if current is not None:
                raise Conflict(current[0])
            return
        request = {"request_delete_range": {"key": _b64(raw)}}
        reply, maybe_applied = await self._txn(raw, expected_version, request)
        if reply.get("succeeded"):
            return
        current = self._failed_current(reply)
        if maybe_applied and current == 0:
            return
        raise Conflict(current)

    async def list(self, prefix: str = "") -> list[str]:
        start = self.prefix + prefix.encode("utf-8")
        body = {"key": _b64(start), "range_end": _b64(prefix_end(start)), "keys_only": True}
        reply, _ = await self._call("/v3/kv/range", body)
        raw_keys = [_unb64(kv["key"]) for kv in reply.get("kvs", [])]
        return sorted(k[len(self.prefix) :].decode("utf-8") for k in raw_keys)

    async def aclose(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
