"""swift://CONTAINER — OpenStack Swift through python-swiftclient.

Credentials are either tempauth (v1: auth_url, user, key) or a pre-issued
token with its storage URL. One token is shared by every pooled connection:
the store authenticates once, and on a 401 renews it once (when it has the
key) and repeats the request. swiftclient's own re-auth is not used: with
retries=0 it sleeps a second first, and it refuses to resend any upload body,
so a put would fail after an expired token. Connections are not thread-safe,
so each request borrows one from a pool; retries of transient failures
belong to the wrapper above (objfs.storage.retry), not here.

put(if_absent=True): exactly one of racing writers wins
--------------------------------------------------------
`If-None-Match: *` alone is not enough on Swift: the object server checks it
when a PUT starts, before it reads the body, and nothing stops two PUTs in
flight from both committing (no lock, last timestamp wins). On Swift 2.30,
two writers started together on one name both got 201 in 162 of 200 rounds
with 16-byte bodies and in 175 of 200 with 1 MiB bodies. Writing a writer id
into the object and reading it back does not help either: a writer that sees
its own id cannot know that a racer's upload still in flight will not land
on top of it later.

What Swift does decide atomically is the creation of a container: the
container server creates the database under a lock and answers 201 to one
creator and 202 to all others (4 racers x 200 rounds: always exactly one
201). With several replicas the proxy answers 201 only when every replica
created it, so at most one racer can see 201. So put-if-absent first takes a
*claim*, an empty container named after the object, and only its holder
uploads:

1. PUT the claim `<container>.objfs-claim.<sha256(container, name)>.<k>`,
   k = 0 first. 201: this writer holds it; go to 2. 202: read the claim's
   state (metadata X-Container-Meta-Objfs-Claim), then HEAD the object:
   - released: its holder failed before storing anything; try claim k+1;
   - the object exists: AlreadyExists;
   - committed but no object: the object was deleted since; try k+1;
   - no state and no object: the holder is still uploading; poll until one
     of the above, at most `timeout` seconds (then TransientError).
2. The holder uploads with `If-None-Match: *`, which still catches objects
   written by a plain put (those take no claim); 412 is AlreadyExists.
3. The holder marks the claim "committed" (after a 412 too: the claim now
   stands for that object), or "released" when the upload failed, so that a
   retry or another writer can take claim k+1.

Claims are never deleted, because reviving a deleted container is not
atomic (the container server checks "is deleted" and revives it without a
lock); a name's claims only move on to k+1. Plain put, get, head, delete and
list never touch claims and stay single requests. Measured on the all-in-one
Swift: a 64 KiB put takes 6-8 ms, with if_absent 22-28 ms (claim PUT, object
PUT, claim POST); a losing writer learns AlreadyExists in 17-21 ms. The costs:
one container per object ever created with if_absent (listed in the account
under the prefix `<container>.objfs-claim.`, for `objfs destroy` to remove
with the volume), and put(if_absent) needs the right to create containers.
A claim left pending by a writer that crashed mid-upload is abandoned after
CLAIM_TTL and released by the next writer (an upload slower than that could
be overtaken). If the reply to the claim PUT itself is lost, the claim may
be ours without our knowing: it then looks like a racer's pending claim and
the name stays blocked (TransientError, then Unavailable) until CLAIM_TTL.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests.exceptions
import trio
import urllib3.exceptions
from swiftclient.client import ClientException, Connection, get_auth

from objfs.storage.api import (
    CHUNK_SIZE,
    EmptyReader,
    ListPage,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Payload,
    as_payload,
    check_name,
    check_range,
    raise_payload_error,
    read_whole,
    run_blocking,
    unquote_etag,
)
from objfs.storage.errors import (
    AlreadyExists,
    AuthError,
    ConfigError,
    NotFound,
    StorageError,
    TransientError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_CONTAINER_BYTES = 256
MAX_LISTING = 10_000  # Swift's cap on one listing page
SMALL_PUT = CHUNK_SIZE  # payloads up to this size are sent as one bytes object
CLAIM_META = "X-Container-Meta-Objfs-Claim"
CONTENT_TYPE = "application/octet-stream"  # stops Swift guessing a type from the name
CLAIM_TTL = 3600.0  # seconds after which a claim still pending is abandoned
CLAIM_SUFFIX = re.compile(r"[0-9a-f]{32}\.[0-9]+")  # after the prefix: hash and generation
TRANSIENT_STATUS = {408, 409, 429, 498, 499}  # 409: a write with the same timestamp

# Failures of the connection rather than answers of the server: worth a retry.
NETWORK_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.SSLError,
    http.client.HTTPException,
    OSError,  # socket.error, ssl.SSLError, resets
)


class _RangeNotSatisfiable(StorageError):
    """416: the range starts at or past the end of an existing object."""


def typed(exc: BaseException, name: str | None, what: str) -> BaseException:
    """The error to raise for `exc`: typed errors and interrupts pass unchanged."""
    if isinstance(exc, StorageError) or not isinstance(exc, Exception):
        return exc
    error = translate(exc, name, what)
    error.__cause__ = exc
    return error


def translate(exc: Exception, name: str | None, what: str) -> StorageError:
    """The typed error for a failure of swiftclient, requests or the socket."""
    if isinstance(exc, ClientException):
        status = exc.http_status
        reason = f"{status} {exc.http_reason}".strip() if status else str(exc)
        if status == 404:
            return NotFound(f"{what}: not found", name)
        if status in (401, 403):
            return AuthError(f"{what}: access refused ({reason})", name)
        if status == 412:
            return AlreadyExists(f"{what}: the name is taken", name)
        if status == 416:
            return _RangeNotSatisfiable(f"{what}: range not satisfiable", name)
        if status is not None and (status >= 500 or status in TRANSIENT_STATUS):
            return TransientError(f"{what}: {reason}", name)
        return StorageError(f"{what}: {reason}", name)
    if isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY" in str(exc):
        return StorageError(f"{what}: TLS certificate refused: {exc}", name)
    if isinstance(exc, NETWORK_ERRORS):
        return TransientError(f"{what}: {type(exc).__name__}: {exc}", name)
    return StorageError(f"{what}: {type(exc).__name__}: {exc}", name)


def _strip_secrets(url: str) -> str:
    """`url` without user info or query (where tokens could hide)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _check_http_url(what: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"swift {what} must be an http(s) URL, got {_strip_secrets(url)!r}")


def _cut_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


class _Auth:
    """The storage URL and token that every pooled connection uses."""

    def __init__(
        self,
        auth_url: str | None,
        user: str | None,
        key: str | None,
        storage_url: str | None,
        token: str | None,
        timeout: float,
    ) -> None:
        self._credentials = (auth_url, user, key) if auth_url else None
        self._timeout = timeout
        self._lock = threading.Lock()
        self.storage_url, self.token = storage_url, token

    @property
    def renewable(self) -> bool:
        return self._credentials is not None

    def current(self) -> tuple[str, str]:
        # Under the lock, so parallel first requests authenticate only once.
        with self._lock:
            if self.storage_url is None or self.token is None:
                assert self._credentials is not None
                auth_url, user, key = self._credentials
                log.debug("authenticating at %s as %s", auth_url, user)
                self.storage_url, self.token = get_auth(
                    auth_url, user, key, auth_version="1", timeout=self._timeout
                )
            return self.storage_url, self.token

    def expire(self, token: str) -> None:
        """Forget `token` (refused with 401) unless another thread renewed it already."""
        with self._lock:
            if self.renewable and self.token == token:
                self.token = None


class _Pool:
    """Idle swiftclient connections, at most `size` kept."""

    def __init__(self, size: int, timeout: float) -> None:
        self._size, self._timeout = size, timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self.closed = False

    def take(self) -> Connection:
        with self._lock:
            if self.closed:
                raise StorageError("the swift store is closed")
            if self._idle:
                return self._idle.pop()
        # retries=0: retrying is the wrapper's job; no credentials: _Auth renews.
        return Connection(retries=0, timeout=self._timeout, retry_on_ratelimit=False)

    def give(self, conn: Connection, healthy: bool = True) -> None:
        with self._lock:
            if healthy and not self.closed and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _PayloadReader:
    """A file-like view of a payload, so requests streams it chunk by chunk."""

    def __init__(self, payload: Payload) -> None:
        self._chunks = payload.chunks()
        self._size = payload.size
        self._buffer = memoryview(b"")
        self.sent = 0
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            while not self._buffer:
                chunk = next(self._chunks, None)
                if chunk is None:
                    if self.sent < self._size:
                        raise StorageError(
                            f"put: payload ended after {self.sent} of {self._size} bytes"
                        )
                    return b""
                self._buffer = memoryview(chunk)
        except BaseException as exc:
            self.error = exc  # surfaces as itself, not as whatever requests wraps it in
            raise
        size = len(self._buffer) if size is None or size < 0 else size
        piece, self._buffer = self._buffer[:size], self._buffer[size:]
        data = piece.tobytes()
        self.sent += len(data)
        return data


class SwiftReader(ObjectReader):
    """A ranged GET being streamed; holds its connection until the end or aclose."""

    def __init__(self, store: SwiftStore, name: str, conn: Connection, body: Any) -> None:
        self._store, self._name = store, name
        self._conn: Connection | None = conn
        self._body = body
        self._broken = False  # a failed stream must not look like a finished one

    async def receive_some(self) -> bytes:
        if self._broken:
            raise StorageError("get: this stream failed earlier; open the range again", self._name)
        if self._conn is None:
            return b""
        chunk = await run_blocking(self._store._limiter, self._read)
        if not chunk:
            self._release(healthy=True)
        return chunk

    def _read(self) -> bytes:
        try:
            return self._body.read(CHUNK_SIZE)
        except BaseException as exc:
            self._broken = True
            self._release(healthy=False)
            raise typed(exc, self._name, "get")  # noqa: B904 (typed() chains the cause)

    def _release(self, healthy: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if not healthy:
                self._body.close()
            self._store._pool.give(conn, healthy)

    async def aclose(self) -> None:
        # Synchronous on purpose: closing a socket does not block, and it must
        # happen even when the caller is being cancelled.
        self._release(healthy=False)


class SwiftStore(ObjectStore):
    """One Swift container."""

    def __init__(
        self,
        container: str,
        *,
        auth_url: str | None = None,
        user: str | None = None,
        key: str | None = None,
        storage_url: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        max_connections: int = 16,
    ) -> None:
        if not container or "/" in container or len(container.encode()) > MAX_CONTAINER_BYTES:
            raise ConfigError(
                f"swift container name must be 1-{MAX_CONTAINER_BYTES} bytes without '/'",
                container,
            )
        tempauth = (auth_url, user, key)
        preauth = (storage_url, token)
        if all(tempauth) and not any(preauth):
            _check_http_url("auth_url", auth_url or "")
            where = f"auth_url={quote(_strip_secrets(auth_url or ''), safe='')}"
            where += f"&user={quote(user or '', safe='')}"
        elif all(preauth) and not any(tempauth):
            _check_http_url("storage_url", storage_url or "")
            where = f"storage_url={quote(_strip_secrets(storage_url or ''), safe='')}"
        else:
            raise ConfigError(_config_problem(tempauth, preauth), container)
        if timeout <= 0 or max_connections < 1:
            raise ConfigError("swift timeout must be > 0 and connections >= 1", container)
        self.container = container
        self.url = f"swift://{quote(container, safe='')}?{where}"
        self.timeout = timeout
        self._auth = _Auth(auth_url, user, key, storage_url, token, timeout)
        self._pool = _Pool(max_connections, timeout)
        self._limiter = trio.CapacityLimiter(max_connections)
        # Set once the container is known to exist, so that a 404 of an object
        # needs no HEAD of the container to tell which of the two is missing.
        self._container_seen = False
        prefix = _cut_utf8(container, MAX_CONTAINER_BYTES - 60)
        self._claim_prefix = f"{prefix}.objfs-claim."

    # -- running requests ---------------------------------------------------

    def _request(self, conn: Connection, fn: Callable[[Connection], T]) -> T:
        """fn(conn) with the shared token; renewed and repeated once after a 401."""
        for attempt in (1, 2):
            url, token = self._auth.current()
            if conn.url != url:
                conn.close()  # the cached HTTP connection is bound to the old URL
                conn.http_conn = None
            conn.url, conn.token = url, token
            try:
                return fn(conn)
            except ClientException as exc:
                if exc.http_status != 401 or attempt == 2 or not self._auth.renewable:
                    raise
                log.info("swift token refused (401); authenticating again")
                self._auth.expire(token)
        raise AssertionError("unreachable")

    def _call(self, name: str | None, what: str, fn: Callable[[Connection], T]) -> T:
        """Run fn on a pooled connection (in a worker thread), errors typed."""
        conn = self._pool.take()
        try:
            result = self._request(conn, fn)
        except BaseException as exc:
            # An HTTP answer leaves the connection usable; anything else may not.
            self._pool.give(conn, healthy=isinstance(exc, ClientException))
            raise typed(exc, name, what)  # noqa: B904 (typed() chains the cause)
        self._pool.give(conn)
        return result

    async def _run(self, name: str | None, what: str, fn: Callable[[Connection], T]) -> T:
        return await run_blocking(self._limiter, self._call, name, what, fn)

    async def _not_found(self, missing: NotFound) -> NotFound:
        """`missing` (an object's 404), or a NotFound of the container if that is missing."""
        if not self._container_seen:
            try:
                await self._run(self.container, "container", self._head_container)
            except NotFound as gone:
                return gone
        return missing

    def _head_container(self, conn: Connection) -> None:
        conn.head_container(self.container)
        self._container_seen = True

    # -- the ObjectStore interface ------------------------------------------

    async def ensure_container(self) -> None:
        await self._run(self.container, "create container", self._create_container)

    def _create_container(self, conn: Connection) -> None:
        conn.put_container(self.container)
        self._container_seen = True

    async def put(self, name: str, data: bytes | Payload, *, if_absent: bool = False) -> None:
        check_name(name)
        payload = as_payload(data)
        if if_absent:
            await self._put_if_absent(name, payload)
        else:
            await self._put(name, payload, if_absent=False)

    async def _put(self, name: str, payload: Payload, *, if_absent: bool) -> None:
        headers = {"If-None-Match": "*"} if if_absent else {}
        try:
            await self._run(name, "put", lambda conn: self._upload(conn, name, payload, headers))
        except NotFound as exc:
            # A PUT answers 404 only when the container is missing.
            raise NotFound("put: container not found", self.container) from exc

    def _upload(self, conn: Connection, name: str, payload: Payload, headers: dict) -> None:
        if payload.size <= SMALL_PUT:
            body: bytes | _PayloadReader = read_whole(payload, name)  # sent in one go
        else:
            body = _PayloadReader(payload)  # streamed: never whole in memory
        try:
            conn.put_object(
                self.container,
                name,
                body,
                content_length=payload.size,
                content_type=CONTENT_TYPE,
                headers=headers,
            )
        except BaseException:
            if isinstance(body, _PayloadReader) and body.error is not None:
                # The payload failed, not Swift; requests may have wrapped its error.
                raise_payload_error(body.error, name)
            raise
        self._container_seen = True

    async def open(self, name: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        check_name(name)
        check_range(offset, length)
        if length == 0:
            await self.head(name)  # NotFound still applies to an empty range
            return EmptyReader()
        headers = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        try:
            conn, body = await run_blocking(self._limiter, self._start_get, name, headers)
        except _RangeNotSatisfiable:
            return EmptyReader()  # the range starts at or past the end
        except NotFound as exc:
            raise await self._not_found(exc) from exc
        return SwiftReader(self, name, conn, body)

    def _start_get(self, name: str, headers: dict) -> tuple[Connection, Any]:
        """Send the GET on a connection that the reader then keeps."""
        conn = self._pool.take()
        try:
            _, body = self._request(
                conn,
                lambda c: c.get_object(
                    self.container, name, resp_chunk_size=CHUNK_SIZE, headers=headers
                ),
            )
        except BaseException as exc:
            self._pool.give(conn, healthy=isinstance(exc, ClientException))
            raise typed(exc, name, "get")  # noqa: B904 (typed() chains the cause)
        self._container_seen = True
        return conn, body

    async def head(self, name: str) -> ObjectInfo:
        check_name(name)
        try:
            headers = await self._run(
                name, "head", lambda conn: conn.head_object(self.container, name)
            )
        except NotFound as exc:
            raise await self._not_found(exc) from exc
        self._container_seen = True
        return ObjectInfo(name, int(headers["content-length"]), unquote_etag(headers.get("etag")))

    async def delete(self, name: str) -> None:
        check_name(name)
        try:
            await self._run(name, "delete", lambda conn: conn.delete_object(self.container, name))
        except NotFound as exc:
            raise await self._not_found(exc) from exc
        self._container_seen = True

    async def list_page(
        self, prefix: str = "", start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        if limit < 1:
            raise ValueError(f"listing limit must be >= 1, got {limit}")
        limit = min(limit, MAX_LISTING)

        def listing(conn: Connection) -> list[dict]:
            _, items = conn.get_container(
                self.container, marker=start_after or None, limit=limit, prefix=prefix or None
            )
            return items

        items = await self._run(self.container, "list", listing)
        self._container_seen = True
        infos = [
            ObjectInfo(i["name"], int(i["bytes"]), unquote_etag(i.get("hash")), _listed_time(i))
            for i in items
        ]
        # Swift lists in UTF-8 byte order already (SQLite's binary collation).
        last = infos[-1].name if len(infos) == limit else None
        return ListPage(infos, last)

    async def aclose(self) -> None:
        self._pool.close()

    # -- put-if-absent through claims (see the module docstring) -------------

    def _claim_name(self, name: str, generation: int) -> str:
        key = f"{self.container}\0{name}".encode("utf-8", "surrogatepass")
        return f"{self._claim_prefix}{hashlib.sha256(key).hexdigest()[:32]}.{generation}"

    async def _put_if_absent(self, name: str, payload: Payload) -> None:
        claim = await self._take_claim(name)
        try:
            await self._put(name, payload, if_absent=True)
        except AlreadyExists:
            # Taken by a plain put (no claim): this claim now stands for that object.
            await self._settle(name, claim, "committed")
            raise
        except BaseException:
            await self._settle(name, claim, "released")
            raise
        await self._settle(name, claim, "committed")

    async def _take_claim(self, name: str) -> str:
        """The claim this writer now holds, or AlreadyExists."""
        generation = 0
        while True:
            claim = self._claim_name(name, generation)
            if await self._run(name, "put (claim)", partial(self._create_claim, claim=claim)):
                return claim
            if await self._claim_stands(name, claim):
                raise AlreadyExists("put: the name is taken", name)
            generation += 1  # that claim is spent: its holder failed or its object was deleted

    @staticmethod
    def _create_claim(conn: Connection, claim: str) -> bool:
        answer: dict = {}
        conn.put_container(claim, response_dict=answer)
        return answer["status"] == 201

    async def _claim_stands(self, name: str, claim: str) -> bool:
        """Whether another writer's claim stands for an object; waits while it uploads."""
        deadline = trio.current_time() + self.timeout
        delay = 0.005
        while True:
            try:
                headers = await self._run(name, "put (claim)", lambda c: c.head_container(claim))
            except NotFound:
                return False  # removed by hand: never recreate it (see the docstring)
            state = headers.get(CLAIM_META.lower())
            if state == "released":
                return False
            # Read after the state: "committed" and absent means deleted since.
            if await self._exists(name):
                return True
            if state == "committed":
                return False
            if _age(headers) > CLAIM_TTL:
                log.warning("put %r: claim %s abandoned by its holder; releasing it", name, claim)
                await self._settle(name, claim, "released")
                return False
            if trio.current_time() + delay > deadline:
                raise TransientError("put: another writer is still creating the object", name)
            await trio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _settle(self, name: str, claim: str, state: str) -> None:
        """Record the outcome on the claim; must happen even under cancellation."""
        with trio.CancelScope(shield=True):
            try:
                await self._run(
                    name, "put (claim)", lambda c: c.post_container(claim, {CLAIM_META: state})
                )
            except StorageError as exc:
                # A claim left pending blocks the name until CLAIM_TTL; the put
                # itself is decided, so report this without failing it.
                log.error("put %r: could not mark claim %s %s: %s", name, claim, state, exc)

    async def _exists(self, name: str) -> bool:
        try:
            await self.head(name)
        except NotFound:
            return False
        return True

    # -- objfs destroy: a volume's claims go with it --------------------------

    async def claim_pages(self) -> AsyncIterator[list[str]]:
        """The names of this container's claim containers (see the module docstring), by page."""
        marker = None
        while True:
            page = await self._run(self.container, "list claims", partial(self._claims, marker))
            yield [claim for claim in page if self._is_claim(claim)]
            if len(page) < MAX_LISTING:
                return
            marker = page[-1]

    def _claims(self, marker: str | None, conn: Connection) -> list[str]:
        _, items = conn.get_account(prefix=self._claim_prefix, marker=marker, limit=MAX_LISTING)
        return [item["name"] for item in items]

    def _is_claim(self, name: str) -> bool:
        # Not the claims of another container whose name starts like ours.
        rest = name.removeprefix(self._claim_prefix)
        return name != rest and CLAIM_SUFFIX.fullmatch(rest) is not None

    async def delete_claim(self, claim: str) -> None:
        """Delete one claim container; only when nothing writes the container any more."""
        if not self._is_claim(claim):
            raise ValueError(f"{claim!r} is not a claim of container {self.container!r}")
        try:
            await self._run(claim, "delete claim", lambda conn: conn.delete_container(claim))
        except NotFound:
            pass  # gone already: an interrupted destroy run again


def _listed_time(item: dict) -> float | None:
    """A listing's last_modified (ISO 8601, UTC, no zone) as seconds since the epoch."""
    try:
        return datetime.fromisoformat(item["last_modified"]).replace(tzinfo=UTC).timestamp()
    except (KeyError, ValueError):
        return None


def _age(headers: dict) -> float:
    """Seconds since the container was created, by the server's clocks."""
    try:
        now = parsedate_to_datetime(headers["date"]).timestamp()
        return now - float(headers["x-timestamp"])
    except (KeyError, TypeError, ValueError):
        return 0.0


def _config_problem(tempauth: tuple, preauth: tuple) -> str:
    if any(tempauth) and any(preauth):
        return "give swift either auth_url+user+key or storage_url+token, not both"
    if any(tempauth):
        missing = [n for n, v in zip(("auth_url", "user", "key"), tempauth, strict=True) if not v]
        return f"swift tempauth needs auth_url, user and key (missing: {', '.join(missing)})"
    if any(preauth):
        missing = [n for n, v in zip(("storage_url", "token"), preauth, strict=True) if not v]
        return f"a pre-issued swift token needs storage_url and token (missing: {missing[0]})"
    return "swift needs credentials: auth_url+user+key, or storage_url+token"
