"""The in-memory state of one served volume, and how it is read back from storage.

A checkpoint record (in ickpt) names a superblock, which names the inode
table's B+tree root and carries the accounting; `load` rebuilds a
`VolumeState` from them. The inode table's pages stay in storage and come
in through a bounded page cache, so memory does not grow with the volume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trio

from imgr.accounts import Accounts
from imgr.nonces import Nonces
from layout.btree import BTree
from layout.codec import IntCodec, Location
from layout.errors import LayoutError
from layout.pagecache import PageCache
from layout.records import Checkpoint, InodeTableCodec, Superblock
from objfs.objects import StoreReader

log = logging.getLogger(__name__)

TABLE_PAGE_BYTES = 8192


@dataclass
class VolumeState:
    volume_id: bytes
    table: BTree  # inode -> head Location
    inode_count: int
    accounts: Accounts
    inodes: Nonces
    objects: Nonces
    record: Checkpoint | None  # the newest durable checkpoint (None while formatting)
    version: int  # its version in ickpt (0: none yet)
    reader: StoreReader
    # Serializes writers of the table with the checkpoint's flush of it.
    lock: trio.Lock
    changes: int = 0  # batches applied since this imgr started
    # Inodes deleted while a mount had them open: deleted at their last close.
    orphans: set[int] = field(default_factory=set)

    @property
    def sequence(self) -> int:
        return self.record.sequence if self.record else 0


def new_table(root: Location | None, reader: StoreReader, cache: PageCache) -> BTree:
    return BTree(
        root, reader, IntCodec(), InodeTableCodec(), cache=cache, page_bytes=TABLE_PAGE_BYTES
    )


def empty(volume_id: bytes, reader: StoreReader, cache: PageCache) -> VolumeState:
    """A volume with nothing in it yet (numbers start at 1; root is created by format)."""
    return VolumeState(
        volume_id=volume_id,
        table=new_table(None, reader, cache),
        inode_count=0,
        accounts=Accounts(),
        inodes=Nonces(cursor=1, durable=1),
        objects=Nonces(cursor=1, durable=1),
        record=None,
        version=0,
        reader=reader,
        lock=trio.Lock(),
    )


async def load(
    record: Checkpoint, version: int, reader: StoreReader, cache: PageCache
) -> VolumeState:
    """The state a durable checkpoint describes."""
    where = f"superblock of checkpoint {record.sequence}"
    data = await reader.read(record.superblock)
    sb = Superblock.decode(data, f"{where}, {record.superblock}")
    table = new_table(sb.inode_table, reader, cache)
    count = await table.count()
    if count != sb.inode_count:
        raise LayoutError(f"inode table holds {count} inodes, superblock says {sb.inode_count}")
    accounts = Accounts(
        referenced=dict(sb.referenced),
        object_count=sb.object_count,
        bytes_written=sb.bytes_written,
        deleting=set(sb.deleting),
        pinned=record.superblock.object,
    )
    log.info(
        "loaded checkpoint %d: %d inodes, %d objects, %d being deleted",
        record.sequence,
        count,
        sb.object_count,
        len(sb.deleting),
    )
    return VolumeState(
        volume_id=record.volume_id,
        table=table,
        inode_count=count,
        accounts=accounts,
        inodes=Nonces(cursor=record.next_inode, durable=record.next_inode),
        objects=Nonces(cursor=record.next_object, durable=record.next_object),
        record=record,
        version=version,
        reader=reader,
        lock=trio.Lock(),
        orphans=set(sb.orphans),
    )
