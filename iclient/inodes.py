"""The inodes a mount holds, loaded on demand under imgr leases.

An inode is usable here only under a lease: shared to read and cache it,
exclusive to change it. Inodes this mount created are exclusively its own
until another mount asks for them (imgr's "fresh" numbers), so creating
files costs no Lease call. Losing a lease (an interrupt from imgr, answered
by iclient.mount after a commit) leaves the Inode object in place with lease
"none": the next use asks for the lease again and reloads the head if it
changed meanwhile, so the kernel's references to it stay valid.
"""

from __future__ import annotations

import errno
import logging
from collections import OrderedDict
from collections.abc import Callable

from iclient.api import ROOT_INODE, FsError
from iclient.inode import Inode
from imgr.client import ImgrClient
from layout.btree import BTree
from layout.codec import IntCodec, Location
from layout.pagecache import PageCache
from layout.records import (
    DirEntryCodec,
    DirNameCodec,
    ExtentCodec,
    FileType,
    InodeHead,
)
from objfs.objects import StoreReader
from objfs.rpc import NotFound

log = logging.getLogger(__name__)

SHARED, EXCLUSIVE, NONE = "shared", "exclusive", "none"


class Inodes:
    def __init__(
        self,
        imgr: ImgrClient,
        reader: StoreReader,
        pages: PageCache,
        *,
        page_bytes: int = 8192,
        idle_inodes: int = 100_000,
    ) -> None:
        self.imgr = imgr
        self.reader = reader
        self.pages = pages
        self.page_bytes = page_bytes
        self.held: dict[int, Inode] = {}
        self.locations: dict[int, Location] = {}  # where each held head was loaded from
        self.deleted: set[int] = set()  # unlinked inodes to drop from the table at commit
        self.unlinked: set[int] = set()  # held inodes with no name left, still open or looked up
        self._idle: OrderedDict[int, None] = OrderedDict()  # evictable, oldest first
        self._idle_bound = idle_inodes
        # Inodes whose lease is being asked for: [requests in flight, let-gos meanwhile].
        self._asking: dict[int, list[int]] = {}
        self._numbers = iter(())  # fresh inode numbers fetched but not used
        self._numbers_left = 0
        self.lease_calls = 0
        self.loads = 0
        self.on_stale: Callable[[Inode], None] = lambda inode: None

    # ------------------------------------------------------------ getting

    async def get(self, number: int, exclusive: bool = False) -> Inode:
        """The inode under at least a shared (or an exclusive) lease."""
        for _ in range(100):
            inode = self.held.get(number)
            if inode is not None and _covers(inode.lease, exclusive):
                self._touch(inode)
                return inode
            if number in self.deleted:
                raise FsError(errno.ENOENT, f"inode {number} was deleted")
            want = EXCLUSIVE if exclusive else SHARED
            if inode is not None and inode.lease == SHARED:
                want = "promote"
            granted, inode = await self._lease(number, want)
            if inode is not None:
                inode.lease = _stronger(inode.lease, granted)
                self._touch(inode)
                return inode
        raise FsError(errno.EAGAIN, f"the lease of inode {number} kept being taken back")

    async def _lease(self, number: int, want: str) -> tuple[str, Inode | None]:
        """Ask imgr for the lease and load the inode; no inode if an interrupt took the
        grant back before it was recorded here (then the caller asks again)."""
        self.lease_calls += 1
        asking = self._asking.setdefault(number, [0, 0])
        asking[0] += 1
        let_gos = asking[1]
        try:
            granted = await self.imgr.lease(number, want)
            inode = self.held.get(number)  # another task may have loaded it meanwhile
            if inode is None or inode.lease == NONE:
                inode = await self._load(number, inode)
        finally:
            asking[0] -= 1
            if not asking[0]:
                del self._asking[number]
        return granted, None if asking[1] != let_gos else inode

    async def _load(self, number: int, inode: Inode | None) -> Inode:
        try:
            location = await self.imgr.get_entry(number)
        except NotFound:
            # Deleted by another mount: the kernel may still hold a name for it. ESTALE has
            # it look the name up again (LOOKUP_REVAL), as with NFS, where ENOENT would stick.
            raise FsError(errno.ESTALE, f"inode {number} is not in the inode table") from None
        if inode is not None and self.locations.get(number) == location:
            return inode
        self.loads += 1
        head = InodeHead.decode(await self.reader.read(location), str(location))
        if head.inode != number:
            raise FsError(errno.EIO, f"inode table entry of {number} holds inode {head.inode}")
        self.locations[number] = location
        if inode is None:
            inode = Inode(head, self.tree_of(head), fresh=False, lease=NONE)
            self.held[number] = inode
        else:
            inode.head, inode.tree = head, self.tree_of(head)
            inode.accounting = dict(head.accounting)
            inode.subdirs = None
            inode.epoch += 1
            self.on_stale(inode)
        return inode

    def tree_of(self, head: InodeHead) -> BTree | None:
        if head.type is FileType.DIRECTORY:
            codecs = (DirNameCodec(), DirEntryCodec())
        elif head.type is FileType.REGULAR:
            codecs = (IntCodec(), ExtentCodec())
        else:
            return None
        return BTree(
            head.payload, self.reader, *codecs, cache=self.pages, page_bytes=self.page_bytes
        )

    # ----------------------------------------------------------- creating

    async def new_number(self) -> int:
        if not self._numbers_left:
            count = 256
            first = await self.imgr.fetch_nonces("inode", count)
            self._numbers = iter(range(first, first + count))
            self._numbers_left = count
        self._numbers_left -= 1
        return next(self._numbers)

    def add_new(self, head: InodeHead) -> Inode:
        """A head this mount just created (its number from new_number())."""
        inode = Inode(head, self.tree_of(head), fresh=True, lease=EXCLUSIVE, dirty=True)
        self.held[head.inode] = inode
        self._touch(inode)
        return inode

    # ---------------------------------------------------- leases let go

    def let_go(self, number: int, to: str) -> Inode | None:
        """imgr took the lease down to `to` (after a commit); the inode, if held."""
        asking = self._asking.get(number)
        if asking is not None:
            asking[1] += 1  # a grant on its way in may be the one taken down
        inode = self.held.get(number)
        if inode is None:
            return None
        assert not inode.dirty, "a lease let go of a dirty inode"
        inode.fresh = False
        inode.lease = SHARED if to == SHARED and inode.lease != NONE else NONE
        if inode.lease == NONE:
            inode.epoch += 1
            self.on_stale(inode)
        return inode

    def committed(self, inode: Inode, location: Location) -> None:
        self.locations[inode.number] = location
        inode.fresh = False

    def forget_deleted(self, number: int) -> None:
        self.unlinked.discard(number)
        self.held.pop(number, None)
        self.locations.pop(number, None)
        self._idle.pop(number, None)

    # ----------------------------------------------------------- memory

    def _touch(self, inode: Inode) -> None:
        idle = self._idle
        idle[inode.number] = None
        idle.move_to_end(inode.number)
        while len(idle) > self._idle_bound:
            number, _ = idle.popitem(last=False)
            old = self.held.get(number)
            if old is not None and _evictable(old):
                del self.held[number]
                self.locations.pop(number, None)

    def stats(self) -> dict[str, int]:
        return {
            "inodes_held": len(self.held),
            "inodes_dirty": sum(inode.dirty for inode in self.held.values()),
            "leases_exclusive": sum(i.lease == EXCLUSIVE for i in self.held.values()),
            "leases_shared": sum(i.lease == SHARED for i in self.held.values()),
            "lease_calls": self.lease_calls,
            "head_loads": self.loads,
        }


def _covers(held: str, exclusive: bool) -> bool:
    return held == EXCLUSIVE or (held == SHARED and not exclusive)


def _stronger(held: str, granted: str) -> str:
    return EXCLUSIVE if EXCLUSIVE in (held, granted) else granted


def _evictable(inode: Inode) -> bool:
    return (
        not inode.dirty
        and not inode.lookups
        and not inode.opens
        and inode.number != ROOT_INODE
        and not inode.lock.locked()
    )
