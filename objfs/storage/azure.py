"""azure://CONTAINER — Azure Blob Storage (or Azurite) through azure-storage-blob.

The SDK is synchronous: every call runs in a worker thread, at most
`max_connections` at once, over one shared requests session whose pool holds
that many connections. The SDK's own retries are off because RetryingStore
owns retries; this layer only turns failures into typed errors, so a wrong key
fails at once instead of after minutes of back-off.

Listing is the one place where Azure differs from the contract: it pages by an
opaque marker and sorts names by UTF-16 code units, while `list_page` pages by
name and promises UTF-8 byte order. `azure_order.Lister` bridges both.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import trio
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobProperties,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)
from urllib3.util.retry import Retry

from objfs.storage.api import (
    BytesPayload,
    EmptyReader,
    ListPage,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Payload,
    as_payload,
    check_name,
    check_range,
    read_whole,
    run_blocking,
    unquote_etag,
)
from objfs.storage.azure_order import Lister
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
MiB = 1 << 20

# Up to this size a put is one Put Blob request; above it the payload is
# streamed as blocks, so a large object never sits whole in memory. 16 MiB
# holds less than the blocks a streamed put keeps in flight (3 x 8 MiB), and
# one request instead of three doubled 16 MiB PUT MB/s on Azurite.
SMALL_PUT = 16 * MiB
BLOCK_SIZE = 8 * MiB
# Blocks uploaded at once by one put: memory per put is about this many blocks.
PARALLEL_BLOCKS = 3
# Ranged GETs of this size; the SDK holds one such chunk per open reader.
# 8 MiB instead of 4 MiB more than doubled 16 MiB GET MB/s on Azurite.
GET_CHUNK = 8 * MiB
# The service returns at most this many names per listing request.
MAX_PAGE = 5000

_CONTAINER_NAME = re.compile(r"^(?:[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}|\$root|\$web|\$logs)$")


class AzureStore(ObjectStore):
    """One container of an Azure storage account."""

    def __init__(
        self,
        container: str,
        *,
        connection_string: str | None = None,
        account_url: str | None = None,
        account_key: str | None = None,
        account_name: str | None = None,
        sas_token: str | None = None,
        timeout: float = 30.0,
        max_connections: int = 16,
    ) -> None:
        if not _CONTAINER_NAME.match(container or ""):
            raise ConfigError(
                "an Azure container name is 3-63 lowercase letters, digits and single hyphens",
                container,
            )
        if timeout <= 0 or max_connections < 1:
            raise ConfigError("timeout must be positive and max_connections at least 1")
        self.container = container
        self._session = _pooled_session(max_connections)
        options: dict[str, Any] = {
            "session": self._session,
            "retry_total": 0,
            "connection_timeout": timeout,
            "read_timeout": timeout,
            "max_single_get_size": GET_CHUNK,
            "max_chunk_get_size": GET_CHUNK,
            "max_block_size": BLOCK_SIZE,
        }
        try:
            if connection_string is not None:
                if any(v is not None for v in (account_url, account_key, account_name, sas_token)):
                    raise ConfigError("give a connection string or an account URL, not both")
                self._client = _from_connection_string(connection_string, container, options)
            else:
                self._client = _from_account_url(
                    account_url, account_key, account_name, sas_token, container, options
                )
        except BaseException:
            self._session.close()
            raise
        self.account_url = self._client.url.split("?", 1)[0].rsplit("/", 1)[0]
        self.url = f"azure://{container}?account_url={self.account_url}"
        self._limiter = trio.CapacityLimiter(max_connections)
        self._warned_start_ignored = False
        _quiet_sdk_logging()

    def container_sas(self, lifetime: timedelta = timedelta(hours=1)) -> str:
        """A SAS for this container that lets a mount work in it (sp=racwdl): the SAS this
        store was given, or one signed with its account key, valid for `lifetime`."""
        key = self._client.credential
        if key is None:
            return urlsplit(self._client.url).query
        everything = ContainerSasPermissions(
            read=True, add=True, create=True, write=True, delete=True, list=True
        )
        return generate_container_sas(
            key.account_name,
            self.container,
            account_key=key.account_key,
            permission=everything,
            expiry=datetime.now(UTC) + lifetime,
        )

    # -- plumbing -------------------------------------------------------------

    async def _call(
        self,
        what: str,
        name: str | None,
        fn: Callable[..., T],
        *args: object,
        if_absent: bool = False,
        **kwargs: object,
    ) -> T:
        """Run one blocking SDK call in a worker thread; failures become StorageErrors."""
        try:
            return await run_blocking(self._limiter, functools.partial(fn, *args, **kwargs))
        except (AzureError, OSError) as exc:
            raise self._translate(exc, what, name, if_absent) from exc

    def _translate(
        self, exc: BaseException, what: str, name: str | None, if_absent: bool = False
    ) -> StorageError:
        status = getattr(exc, "status_code", None)
        code = _error_code(exc)
        detail = " ".join(str(x) for x in (status, code) if x) or type(exc).__name__
        reason = f"{what} failed: {detail}"
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            if code == "ContainerNotFound":
                return NotFound("container does not exist", self.container)
            return NotFound("object does not exist", name)
        if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
            return AuthError(f"{reason} (credentials refused or not allowed to {what})", name)
        if if_absent and (status == 412 or (status == 409 and code in (None, "BlobAlreadyExists"))):
            return AlreadyExists("object already exists", name)
        if _broken_transfer(exc) or status in (408, 429) or (status or 0) >= 500:
            return TransientError(reason, name)
        return StorageError(reason, name)

    def _blob(self, name: str) -> BlobClient:
        return self._client.get_blob_client(name)

    def _on_blob(self, name: str, method: str, *args: object, **kwargs: object) -> Any:
        # Runs in the worker thread: making a BlobClient costs ~75 us of CPU,
        # too much to spend on the event loop for every small request.
        return getattr(self._blob(name), method)(*args, **kwargs)

    # -- the interface ----------------------------------------------------------

    async def ensure_container(self) -> None:
        try:
            await self._call("create container", self.container, self._client.create_container)
        except AuthError as refused:
            # A container SAS may not create containers; then the container must
            # exist already, which a one-name listing (list permission) shows.
            try:
                await self._call("list", self.container, self._probe)
            except AuthError:
                raise refused from refused.__cause__  # the refused create, not the probe
        except StorageError as exc:
            if _error_code(exc.__cause__) != "ContainerAlreadyExists":
                raise

    def _probe(self) -> None:
        next(iter(self._client.list_blobs(results_per_page=1).by_page()), None)

    async def put(self, name: str, data: bytes | Payload, *, if_absent: bool = False) -> None:
        check_name(name)
        payload = as_payload(data)
        if payload.size <= SMALL_PUT:
            if isinstance(payload, BytesPayload):
                body = payload.data  # no thread hop for bytes already in memory
            else:
                body = await trio.to_thread.run_sync(read_whole, payload, name)
            await self._call(
                "put", name, self._on_blob, name, "upload_blob", body, length=len(body),
                overwrite=not if_absent, if_absent=if_absent,
            )  # fmt: skip
        else:
            await self._put_blocks(name, payload, if_absent)

    async def _put_blocks(self, name: str, payload: Payload, if_absent: bool) -> None:
        """Stream the payload as blocks, then commit them as the object in one request."""
        blob = self._blob(name)
        ids: list[str] = []
        failures: list[Exception] = []
        async with trio.open_nursery() as nursery:
            try:
                await self._stage_all(blob, name, payload, ids, nursery, failures)
            except Exception as exc:  # recorded, not raised: a nursery would wrap it in a group
                failures.append(exc)
                nursery.cancel_scope.cancel()
        if failures:
            raise failures[0]
        # If-None-Match: * makes the commit, not the staging, the create-only
        # step: of racing writers exactly one commit succeeds.
        condition = {"match_condition": MatchConditions.IfMissing} if if_absent else {}
        try:
            await self._call(
                "put", name, blob.commit_block_list, [BlobBlock(block_id) for block_id in ids],
                if_absent=if_absent, **condition,
            )  # fmt: skip
        except StorageError as exc:
            # A competing commit of the same name discards our staged blocks, so
            # ours fails with InvalidBlockList: lost the race, or retry the put.
            if _error_code(exc.__cause__) != "InvalidBlockList":
                raise
            if if_absent:
                raise AlreadyExists("object already exists", name) from exc
            raise TransientError("put failed: a concurrent put replaced the blocks", name) from exc

    async def _stage_all(
        self,
        blob: BlobClient,
        name: str,
        payload: Payload,
        ids: list[str],
        nursery: trio.Nursery,
        failures: list[Exception],
    ) -> None:
        # Fresh block ids per put, so blocks of two puts of one name never mix.
        tag = uuid.uuid4().hex
        blocks = _blocks(payload.chunks(), BLOCK_SIZE, name)
        slots = trio.Semaphore(PARALLEL_BLOCKS)  # bounds the blocks held in memory
        while True:
            await slots.acquire()
            block = await trio.to_thread.run_sync(next, blocks, None)
            if block is None:
                slots.release()
                return
            block_id = f"{tag}-{len(ids):06d}"  # all ids of a blob must have one length
            ids.append(block_id)
            nursery.start_soon(self._stage, blob, name, block_id, block, slots, nursery, failures)

    async def _stage(
        self,
        blob: BlobClient,
        name: str,
        block_id: str,
        block: bytes,
        slots: trio.Semaphore,
        nursery: trio.Nursery,
        failures: list[Exception],
    ) -> None:
        try:
            await self._call("put", name, blob.stage_block, block_id, block, length=len(block))
        except StorageError as exc:
            failures.append(exc)
            nursery.cancel_scope.cancel()
        finally:
            slots.release()

    async def open(self, name: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        check_name(name)
        check_range(offset, length)
        if length == 0:
            await self.head(name)  # an empty range still needs the object to exist
            return EmptyReader()
        # The SDK wants no offset for a whole object (it then copes with empty blobs).
        start = None if offset == 0 and length is None else offset
        try:
            downloader = await self._call(
                "get", name, self._on_blob, name, "download_blob",
                offset=start, length=length, max_concurrency=1,
            )  # fmt: skip
        except StorageError as exc:
            # 416 InvalidRange: the object exists and the range starts at or past its end.
            if getattr(exc.__cause__, "status_code", None) == 416:
                return EmptyReader()
            raise
        return _AzureReader(self, name, downloader.chunks())

    async def head(self, name: str) -> ObjectInfo:
        check_name(name)
        props = await self._call("head", name, self._on_blob, name, "get_blob_properties")
        return ObjectInfo(name, props.size, unquote_etag(props.etag))

    async def delete(self, name: str) -> None:
        check_name(name)
        await self._call("delete", name, self._on_blob, name, "delete_blob")

    async def list_page(
        self, prefix: str = "", start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        if limit < 1:
            raise ValueError(f"list_page limit must be at least 1, not {limit}")
        found = await self._call("list", prefix, self._list_sync, prefix, start_after, limit)
        items = [
            ObjectInfo(p.name, p.size, unquote_etag(p.etag), _timestamp(p.last_modified))
            for p in found[:limit]
        ]
        return ListPage(items, items[-1].name if len(found) > limit else None)

    def _list_sync(self, prefix: str, start_after: str | None, limit: int) -> list[BlobProperties]:
        # One more than asked tells whether another page follows; the page size
        # leaves room for start_after itself, which startFrom includes.
        lister = Lister(self._fetch, min(limit + 2, MAX_PAGE))
        found = list(islice(lister.after(prefix, start_after), limit + 1))
        if lister.start_ignored and not self._warned_start_ignored:
            self._warned_start_ignored = True
            log.warning(
                "%s ignores List Blobs startFrom (service version 2026-02-06); "
                "each listing page rereads the names before it",
                self.account_url,
            )
        return found

    def _fetch(self, prefix: str, start: str, per_page: int) -> Iterator[BlobProperties]:
        """Blobs named `prefix`..., from `start` on in UTF-16 order, fetched page by page."""
        extra = {"start_from": start} if start != prefix else {}
        return iter(
            self._client.list_blobs(
                name_starts_with=prefix or None, results_per_page=per_page, **extra
            )
        )

    async def aclose(self) -> None:
        self._client.close()
        self._session.close()


class _AzureReader(ObjectReader):
    """A ranged download; each receive_some fetches the next chunk in a worker thread."""

    def __init__(self, store: AzureStore, name: str, chunks: Iterator[bytes]) -> None:
        self._store, self._name = store, name
        self._chunks: Iterator[bytes] | None = chunks

    async def receive_some(self) -> bytes:
        if self._chunks is None:
            return b""
        chunk = await self._store._call("get", self._name, next, self._chunks, b"")
        if not chunk:
            self._chunks = None
        return chunk

    async def aclose(self) -> None:
        # Every chunk's response is read whole when fetched, so dropping the
        # iterator is all there is to release.
        self._chunks = None


def _pooled_session(max_connections: int) -> requests.Session:
    """A session whose pool keeps max_connections connections for parallel calls."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(
        pool_maxsize=max_connections,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _from_connection_string(
    connection_string: str, container: str, options: dict[str, Any]
) -> ContainerClient:
    fields = {}
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        fields[key.strip().lower()] = value.strip()
    if "usedevelopmentstorage" not in fields:
        if not (fields.get("accountkey") or fields.get("sharedaccesssignature")):
            raise ConfigError("connection string has neither AccountKey nor SharedAccessSignature")
        if fields.get("accountkey"):
            _check_key(fields["accountkey"])
    try:
        return ContainerClient.from_connection_string(connection_string, container, **options)
    except ValueError as exc:
        raise ConfigError(f"bad connection string: {str(exc).splitlines()[0]}") from exc


def _from_account_url(
    account_url: str | None,
    account_key: str | None,
    account_name: str | None,
    sas_token: str | None,
    container: str,
    options: dict[str, Any],
) -> ContainerClient:
    if not account_url:
        raise ConfigError("give a connection string, or an account URL with a key or SAS token")
    parts = urlsplit(account_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("account URL must be http(s)://HOST[/ACCOUNT]", parts.netloc or None)
    if parts.query and sas_token is None:
        sas_token = parts.query  # a SAS pasted into the URL is still a SAS
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    if account_key is not None and sas_token is not None:
        raise ConfigError("give an account key or a SAS token, not both")
    if account_key is not None:
        _check_key(account_key)
        name = account_name or _account_name(parts.hostname, parts.path)
        if not name:
            raise ConfigError("cannot tell the account name from the account URL; give it", base)
        credential: Any = {"account_name": name, "account_key": account_key}
    elif sas_token:
        credential = sas_token.lstrip("?")
    else:
        raise ConfigError("an account URL needs an account key or a SAS token", base)
    try:
        return ContainerClient(base, container, credential=credential, **options)
    except ValueError as exc:
        raise ConfigError(f"bad account URL: {str(exc).splitlines()[0]}", base) from exc


def _account_name(host: str, path: str) -> str | None:
    """`NAME` of NAME.blob.core.windows.net, or of http://IP:PORT/NAME (emulators)."""
    try:
        ipaddress.ip_address(host)
        by_path = True
    except ValueError:
        by_path = host == "localhost" or "." not in host
    if by_path:
        return path.strip("/").split("/")[0] or None
    return host.split(".")[0]


def _check_key(key: str) -> None:
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("account key is not valid base64") from None


def _blocks(chunks: Iterator[bytes], size: int, name: str) -> Iterator[bytes]:
    """Regroup a payload's chunks into blocks of `size` bytes (the last one shorter)."""
    parts: list[bytes] = []
    held = 0
    try:
        for chunk in chunks:
            while chunk:
                take = chunk[: size - held]
                chunk = chunk[len(take) :]
                parts.append(take)
                held += len(take)
                if held == size:
                    yield b"".join(parts)
                    parts, held = [], 0
    except OSError as exc:
        raise StorageError(f"cannot read the data to upload: {exc}", name) from exc
    if held:
        yield b"".join(parts)


def _error_code(exc: BaseException | None) -> str | None:
    code = getattr(exc, "error_code", None)
    return getattr(code, "value", code)


def _broken_transfer(exc: BaseException) -> bool:
    """Whether a connection failed, timed out or broke off, maybe wrapped by the SDK."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, ServiceRequestError | ServiceResponseError | DecodeError | OSError):
            return True
        if isinstance(current, HttpResponseError) and current.status_code is not None:
            return False
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
        seen += 1
    return False


def _timestamp(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def _quiet_sdk_logging() -> None:
    # The SDK logs every request and response at INFO; keep that out of our
    # logs unless someone configured the azure logger on purpose.
    sdk = logging.getLogger("azure")
    if sdk.level == logging.NOTSET:
        sdk.setLevel(logging.WARNING)
