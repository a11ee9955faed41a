"""One served volume: its inode table, mounts, leases, checkpoints and garbage.

`Volume.serve()` claims the volume in ickpt, loads its newest checkpoint,
writes a checkpoint of its own at once (which fences out any earlier owner),
then runs the checkpoint, heartbeat and mount-expiry loops until cancelled
or fenced. The RPC handlers (imgr.service) call the public methods; each
checks its mount and raises the errors of imgr.api.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from ickpt.store import CheckpointStore, StoreError
from imgr import checkpoint as ckpt_steps
from imgr import ownership
from imgr.accounts import AccountingError
from imgr.api import ROOT_INODE, Expelled, Fenced
from imgr.auth import Authenticator
from imgr.fresh import FreshInodes
from imgr.leases import LeaseRevoked, LeaseTable, Mode
from imgr.mounts import Mount, Mounts
from imgr.state import VolumeState, load
from layout.codec import Location
from layout.errors import LayoutError
from layout.naming import object_name
from layout.pagecache import PageCache
from layout.records import Checkpoint, InodeHead
from objfs.objects import StoreReader
from objfs.rpc import InvalidArgument, NotFound, PermissionDenied, RpcUnavailable, Session
from objfs.storage import ObjectStore, StorageError

log = logging.getLogger(__name__)

# The page cache bounds encoded bytes; a decoded inode-table page takes about
# ten times its encoded size in memory (measured by bench/imgr.py), and the
# configured cache size means memory.
DECODED_PER_ENCODED_BYTE = 10

HEAD_READS = 16  # heads of deleted inodes read at once


class Sessions(Protocol):
    """Where upcalls go: the RPC server's sessions, by client id."""

    async def wait_session(self, client_id: str) -> Session: ...


@dataclass(frozen=True)
class Timing:
    checkpoint_interval: float = 5.0
    lease_timeout: float = 10.0
    mount_ttl: float = 60.0
    owner_ttl: float = 30.0


@dataclass
class Batch:
    """One PutInodeTableEntries: applied whole or not at all."""

    entries: dict[int, Location]
    deletes: list[int]
    written: dict[int, int]
    referenced: dict[int, int]
    released: dict[int, int]


class Volume:
    def __init__(
        self,
        name: str,
        url: str,
        store: ObjectStore,
        ckpt: CheckpointStore,
        auth: Authenticator,
        *,
        me: str,
        timing: Timing,
        cache_bytes: int,
        sessions: Sessions,
    ) -> None:
        self.name, self.url, self.me = name, url, me
        self.store, self.ckpt, self.auth = store, ckpt, auth
        self.timing = timing
        self.state_name = "starting"
        self.reason: str | None = None  # why it is not serving (fenced, failed)
        self.fenced: str | None = None
        self.mounts = Mounts(name, timing.mount_ttl)
        self.leases = LeaseTable(self._interrupt, self._expelled_by_leases, timing.lease_timeout)
        self.fresh = FreshInodes()
        self.checkpoints = 0
        self._sessions = sessions
        self._cache = PageCache(cache_bytes // DECODED_PER_ENCODED_BYTE)
        self._reader = StoreReader(store)
        self._state: VolumeState | None = None
        self._owner_version = 0
        self._durable_changes = 0
        self._want = trio.Event()
        self._done = trio.Event()
        self._nursery: trio.Nursery | None = None

    # ------------------------------------------------------------ serving

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Claim, load, checkpoint, then serve until cancelled (or fenced)."""
        self._owner_version = await ownership.claim(
            self.ckpt, self.name, self.me, self.timing.owner_ttl
        )
        self._state = await self._load()
        # The takeover checkpoint: any earlier owner's next swap now fails.
        await self._checkpoint()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.leases.run)
                self.state_name = "serving"
                nursery.start_soon(self._stopping_on_error, self._checkpoint_loop)
                nursery.start_soon(self._stopping_on_error, self._heartbeat_loop)
                nursery.start_soon(self._stopping_on_error, self._expiry_loop)
                if self._state.orphans:
                    nursery.start_soon(self._stopping_on_error, self._orphans_after_restart)
                task_status.started()
        finally:
            self._nursery = None
            self._done.set()

    async def _stopping_on_error(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop`; if it fails, stop serving this volume (and only this one)."""
        try:
            await loop()
        except Fenced as exc:
            self._fence(str(exc))
        except Exception as exc:
            log.exception("volume %s: %s failed", self.name, loop.__name__)
            self._stop_serving("failed", f"{loop.__name__} failed: {exc!r:.200}")

    async def _load(self) -> VolumeState:
        found = await self.ckpt.get(ownership.checkpoint_key(self.name))
        if found is None:
            raise NotFound(f"volume {self.name} has no checkpoint in ickpt: format it first")
        version, value = found
        record = Checkpoint.decode(value, f"checkpoint of volume {self.name} in ickpt")
        state = await load(record, version, self._reader, self._cache)
        if state.accounts.deleting:
            # Unreferenced as of a durable checkpoint: delete them now.
            await ckpt_steps.collect(self.store, state, sorted(state.accounts.deleting))
        return state

    async def stop(self) -> None:
        """A clean stop: a last checkpoint, then let another imgr serve it at once."""
        if self.fenced is None and self._state is not None:
            await self.flush()
            await ownership.give_up(self.ckpt, self.name, self._owner_version)
        self.state_name = "stopped"

    def _fence(self, reason: str) -> None:
        log.error("volume %s: fenced, no longer served: %s", self.name, reason)
        self.fenced = reason
        self._stop_serving("fenced", reason)

    def _stop_serving(self, state_name: str, reason: str) -> None:
        self.state_name = state_name
        self.reason = reason
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        self._done.set()

    @property
    def state(self) -> VolumeState:
        if self.fenced is not None:
            raise Fenced(f"volume {self.name}: {self.fenced}")
        if self._state is None or self.state_name != "serving":
            why = f": {self.reason}" if self.reason else ""
            raise RpcUnavailable(f"volume {self.name} is {self.state_name}{why}")
        return self._state

    # -------------------------------------------------------- checkpoints

    def _dirty(self, state: VolumeState) -> bool:
        return (
            state.changes > self._durable_changes
            or bool(state.accounts.garbage)
            or state.inodes.needs_checkpoint
            or state.objects.needs_checkpoint
        )

    async def _checkpoint_loop(self) -> None:
        while True:
            with trio.move_on_after(self.timing.checkpoint_interval):
                await self._want.wait()
            if self._want.is_set() or self._dirty(self.state):
                self._want = trio.Event()
                await self._checkpoint()

    async def _checkpoint(self) -> None:
        state = self._state
        assert state is not None
        async with state.lock:
            prepared = ckpt_steps.prepare(state)
        segment = prepared.segment.number
        self._reader.unstored[segment] = prepared.segment.data
        try:
            await ckpt_steps.store_segment(self.store, prepared)
        finally:
            del self._reader.unstored[segment]
        key = ownership.checkpoint_key(self.name)
        version = await ckpt_steps.swap(self.ckpt, key, state, prepared)
        ckpt_steps.made_durable(state, prepared, version)
        self.checkpoints += 1
        self._durable_changes = prepared.changes
        done, self._done = self._done, trio.Event()
        done.set()
        backed_up = await ckpt_steps.back_up(self.store, prepared.record)
        old = prepared.old_superblock
        doomed = [o for o in prepared.deleting if backed_up or o != old]
        await ckpt_steps.collect(self.store, state, doomed)

    async def _await_checkpoint(self) -> None:
        """Until the next checkpoint (one started after this call) is durable."""
        done = self._done
        self._want.set()
        await done.wait()
        self.state  # noqa: B018 (raises Fenced if that is why it ended)

    async def flush(self) -> int:
        """Group commit: once every change applied so far is in a durable checkpoint."""
        state = self.state
        target = state.changes
        while self._durable_changes < target:
            await self._await_checkpoint()
        return state.sequence

    async def _heartbeat_loop(self) -> None:
        while True:
            await trio.sleep(self.timing.owner_ttl / 3)
            try:
                self._owner_version = await ownership.heartbeat(
                    self.ckpt, self.name, self.me, self._owner_version
                )
            except StoreError as exc:
                log.warning("volume %s: heartbeat not written: %s", self.name, exc)

    # ------------------------------------------------------------- mounts

    async def mount(self, session: Session, token: str) -> Mount:
        self.state  # noqa: B018 (refuse while not serving)
        await self.auth.check(token)
        mount = self.mounts.add(session.client_id, session.peer)
        log.info("volume %s: mount %s from %s", self.name, mount.id, session.peer)
        return mount

    def live(self, mount_id: str) -> Mount:
        self.state  # noqa: B018
        return self.mounts.live(mount_id)

    def renew(self, mount_id: str) -> None:
        self.live(mount_id).renewed = trio.current_time()

    async def unmount(self, mount_id: str) -> None:
        mount = self.live(mount_id)
        self.leases.release_all(mount.id)
        self.fresh.drop(mount.id)
        await self._closed_all(self.mounts.remove(mount))

    async def _orphans_after_restart(self) -> None:
        """Orphans of the checkpoint we started from: nobody has said they have them open.

        Their mounts had to mount again (mount ids do not survive imgr); once
        they had a mount TTL to reopen them, the orphans still closed go.
        """
        await trio.sleep(self.timing.mount_ttl)
        await self._closed_all(dict.fromkeys(self.state.orphans, 0))

    async def _expiry_loop(self) -> None:
        while True:
            await trio.sleep(self.timing.mount_ttl / 4)
            for mount in self.mounts.overdue():
                ttl = self.timing.mount_ttl
                await self._expel(mount, f"not renewed within {ttl:g}s")

    async def _expel(self, mount: Mount, reason: str) -> None:
        opens = self.mounts.expel(mount, reason)
        self.leases.release_all(mount.id)
        self.fresh.drop(mount.id)
        try:
            await self._closed_all(opens)
        except (LayoutError, StorageError) as exc:
            log.error(
                "volume %s: inodes closed by expelled %s not deleted: %s", self.name, mount.id, exc
            )

    def _expelled_by_leases(self, mount_id: str, reason: str) -> None:
        mount = self.mounts.get(mount_id)
        if mount is not None and mount.expelled is None and self._nursery is not None:
            self._nursery.start_soon(self._expel, mount, reason)

    async def _interrupt(self, mount_id: str, inode: int, target: Mode) -> None:
        """Ask the holder to let go; the lease table bounds how long this may take.

        A mount whose connection is down at that moment is waited for, and
        asked again if its connection breaks under the upcall: a network blip
        shorter than the lease timeout does not get it expelled.
        """
        mount = self.mounts.get(mount_id)
        if mount is None:
            raise RpcUnavailable(f"mount {mount_id} is gone")
        args = {"inode": inode, "to": target.value}
        while True:
            session = await self._sessions.wait_session(mount.client_id)
            try:
                await session.upcall("interrupt", args, timeout=self.timing.lease_timeout)
                return
            except RpcUnavailable as exc:
                log.info("volume %s: interrupt of %s: %s; asking again", self.name, mount_id, exc)

    # ------------------------------------------------------------- leases

    async def lease(self, mount_id: str, inode: int, op: str) -> Mode:
        mount = self.live(mount_id)
        self._check_inode(inode)
        owner = self.fresh.take(inode)
        if owner is not None:
            # Published at last: from now on an ordinary lease, interrupted like any.
            await self.leases.acquire(owner, inode, Mode.EXCLUSIVE)
        if op == "release":
            self.leases.release(mount.id, inode)
            return Mode.NONE
        if op == "demote":
            return self.leases.demote(mount.id, inode)
        mode = Mode.SHARED if op == "shared" else Mode.EXCLUSIVE
        try:
            return await self.leases.acquire(mount.id, inode, mode)
        except LeaseRevoked as exc:
            raise Expelled(str(exc)) from None

    def _check_inode(self, inode: int) -> None:
        if not 1 <= inode < self.state.inodes.cursor:
            raise InvalidArgument(f"inode {inode} was never handed out")

    def _check_exclusive(self, mount: Mount, inodes: Any) -> None:
        for inode in inodes:
            self._check_inode(inode)
            mine = self.leases.holds_exclusive(mount.id, inode)
            if not mine and self.fresh.owner(inode) != mount.id:
                raise PermissionDenied(f"mount {mount.id} holds no exclusive lease on {inode}")

    # ------------------------------------------------------------ numbers

    async def fetch_nonces(self, mount_id: str, kind: str, count: int) -> int:
        mount = self.live(mount_id)
        while True:
            nonces = self.state.inodes if kind == "inode" else self.state.objects
            first = nonces.take(count)
            if first is not None:
                break
            await self._await_checkpoint()
        mount = self.live(mount_id)  # it may have been expelled while it waited
        if kind == "inode":
            self.fresh.add(mount.id, first, count)
        return first

    # -------------------------------------------------------- inode table

    async def get_entry(self, mount_id: str, inode: int) -> Location:
        self.live(mount_id)
        location = await self.state.table.get(inode)
        if location is None:
            raise NotFound(f"inode {inode} is not in the inode table")
        return location

    async def put_entries(self, mount_id: str, batch: Batch) -> None:
        mount = self.live(mount_id)
        if ROOT_INODE in batch.deletes:
            raise InvalidArgument("the root directory cannot be deleted")
        if len(set(batch.deletes)) != len(batch.deletes):
            raise InvalidArgument("an inode is deleted twice")
        if any(not mount.opens.get(i) for i in set(batch.entries) & set(batch.deletes)):
            raise InvalidArgument("an inode both changed and deleted must be open by its mount")
        self._check_exclusive(mount, [*batch.entries, *batch.deletes])
        self._check_objects(batch)
        await self._apply(batch)

    def _check_objects(self, batch: Batch) -> None:
        cursor = self.state.objects.cursor
        named = [*batch.written, *batch.referenced, *(loc.object for loc in batch.entries.values())]
        for obj in named:
            if not 1 <= obj < cursor:
                raise InvalidArgument(f"object {object_name(obj)} was never handed out")

    async def _apply(self, batch: Batch) -> None:
        state = self.state
        async with state.lock:
            olds = {i: await state.table.get(i) for i in [*batch.entries, *batch.deletes]}
            # Changed and deleted at once: an open file's last name went; it becomes an orphan.
            missing = [i for i in batch.deletes if olds[i] is None and i not in batch.entries]
            if missing:
                raise NotFound(f"inode {missing[0]} is not in the inode table")
            now = [i for i in batch.deletes if not self.mounts.open_anywhere(i)]
            referenced, released = dict(batch.referenced), dict(batch.released)
            for inode, location in batch.entries.items():
                _add(referenced, location.object, location.length)
                if olds[inode] is not None:
                    _add(released, olds[inode].object, olds[inode].length)
            for obj, nbytes in (await self._heads_bytes({i: olds[i] for i in now})).items():
                _add(released, obj, nbytes)
            try:
                state.accounts.check(batch.written, referenced, released)
            except AccountingError as exc:
                raise InvalidArgument(str(exc)) from None
            await self._change_table(state, batch.entries, now, olds)
            state.accounts.apply(batch.written, referenced, released)
            state.inode_count += sum(olds[i] is None for i in batch.entries) - len(now)
            state.orphans.update(set(batch.deletes) - set(now))
            state.orphans.difference_update(now)
            state.changes += 1

    async def _change_table(
        self, state: VolumeState, entries: dict, deletes: list[int], olds: dict
    ) -> None:
        """Put and delete; on a failure half way, put back what was done."""
        done: list[int] = []
        try:
            for inode, location in entries.items():
                await state.table.put(inode, location)
                done.append(inode)
            for inode in deletes:
                await state.table.delete(inode)
                done.append(inode)
        except BaseException:
            with trio.CancelScope(shield=True):
                for inode in reversed(done):
                    if olds[inode] is None:
                        await state.table.delete(inode)
                    else:
                        await state.table.put(inode, olds[inode])
            raise

    async def _heads_bytes(self, heads: dict[int, Location]) -> dict[int, int]:
        """The bytes of all these inodes (see _inode_bytes), HEAD_READS heads read at once.

        Read one at a time, a batch deleting 500 inodes would hold the volume's
        lock for 500 store round trips: seconds on Swift or Azure.
        """
        found: dict[int, int] = {}
        failed: list[Exception] = []
        limiter = trio.CapacityLimiter(HEAD_READS)

        async def read(inode: int, head: Location) -> None:
            try:
                async with limiter:
                    counts = await self._inode_bytes(inode, head)
            except Exception as exc:  # raised as it is below, not in an ExceptionGroup
                failed.append(exc)
                nursery.cancel_scope.cancel()
                return
            for obj, nbytes in counts.items():
                _add(found, obj, nbytes)

        async with trio.open_nursery() as nursery:
            for inode, head in heads.items():
                nursery.start_soon(read, inode, head)
        if failed:
            raise failed[0]
        return found

    async def _inode_bytes(self, inode: int, head: Location) -> dict[int, int]:
        """Every byte the inode refers to: its head and its payload."""
        found = {head.object: head.length}
        try:
            data = await self._reader.read(head)
            decoded = InodeHead.decode(data, f"inode head in {head}")
        except LayoutError as exc:
            log.error("volume %s: inode %d: %s; only its head is released", self.name, inode, exc)
            return found
        for obj, nbytes in decoded.accounting.items():
            _add(found, obj, nbytes)
        return found

    async def delete_entry(self, mount_id: str, inode: int) -> None:
        await self.put_entries(mount_id, Batch({}, [inode], {}, {}, {}))

    # --------------------------------------------------------- open counts

    async def adjust_open(self, mount_id: str, inode: int, delta: int) -> int:
        mount = self.live(mount_id)
        self._check_inode(inode)
        count = mount.opens.get(inode, 0) + delta
        if count < 0:
            raise InvalidArgument(f"open count of inode {inode} would go below 0")
        if count:
            mount.opens[inode] = count
            return count
        mount.opens.pop(inode, None)
        await self._closed_all({inode: 0})
        return 0

    async def _closed_all(self, opens: dict[int, int]) -> None:
        """Delete the orphans (deleted while open) that nobody has open any more."""
        state = self._state
        if state is None:
            return
        gone = [i for i in opens if i in state.orphans and not self.mounts.open_anywhere(i)]
        if not gone:
            return
        async with state.lock:
            olds = {i: await state.table.get(i) for i in gone}
            present = [i for i in gone if olds[i] is not None]
            released = await self._heads_bytes({i: olds[i] for i in present})
            await self._change_table(state, {}, present, olds)
            state.accounts.apply({}, {}, released)
            state.inode_count -= len(present)
            state.orphans.difference_update(gone)
            state.changes += 1

    # -------------------------------------------------------------- status

    def summary(self) -> dict:
        state = self._state
        record = state.record if state else None
        accounts = state.accounts if state else None
        age = None if record is None else max(0.0, (time.time_ns() - record.time_ns) / 1e9)
        return {
            "name": self.name,
            "url": self.url,
            "state": self.state_name,
            "fenced": self.fenced,
            "reason": self.reason,
            "volume_id": state.volume_id.hex() if state else None,
            "mounts": len(self.mounts.alive()),
            "leases": len(self.leases.snapshot()),
            "checkpoint": {
                "sequence": state.sequence if state else None,
                "age_seconds": age,
                "count": self.checkpoints,
            },
            "inodes": state.inode_count if state else 0,
            "objects": {
                "live": len(accounts.referenced) + (accounts.pinned is not None) if accounts else 0,
                "garbage": len(accounts.garbage | accounts.deleting) if accounts else 0,
                "deleted": accounts.deleted if accounts else 0,
            },
            "bytes": {
                "written": accounts.bytes_written if accounts else 0,
                "referenced": accounts.bytes_referenced if accounts else 0,
                "garbage": accounts.garbage_bytes if accounts else 0,
            },
        }

    def gc_summary(self) -> dict:
        accounts = self._state.accounts if self._state else None
        if accounts is None:
            return {}
        return {
            "pending": sorted(accounts.garbage),
            "deleting": sorted(accounts.deleting),
            "deleted": accounts.deleted,
            "superblock_object": accounts.pinned,
        }

    @property
    def reader(self) -> StoreReader:
        return self._reader


def _add(counts: dict[int, int], key: int, value: int) -> None:
    counts[key] = counts.get(key, 0) + value
