"""Every record of a volume: checkpoint, superblock, inode head, and tree values.

Framed records (layout.framing trailer, then checked here) have a msgpack
*list* payload whose items are positional; a version fixes the exact length,
so a missing or extra item is an error, and a later version may append items
(readers of that version accept both lengths it knows). Maps are written as
lists of pairs sorted by strictly increasing key: msgpack maps silently drop
duplicate keys and do not fix an order, and the encoding should be canonical.

Checkpoint (CHECKPOINT, version 1), the root of a volume, kept in ickpt
(backed up in object 0)::

    [volume_id bin16, sequence u64, superblock Location,
     next_inode u64, next_object u64, time_ns i64]

    next_inode / next_object are the nonce high-water marks: no inode or
    object number at or above them has been handed out.

Superblock (SUPERBLOCK, version 2; version 1 lacks `orphans`)::

    [inode_table Location|nil, inode_count u64,
     object_count u64, bytes_written u64, bytes_referenced u64,
     referenced [[object u64>0, bytes u64>0], ...], deleting [object, ...],
     orphans [inode, ...]]

    referenced: for every object still (partly) referenced, how many of its
    bytes are; bytes_referenced is their sum. deleting: objects no longer
    referenced as of this checkpoint, to be deleted once it is durable (so a
    restarted imgr still deletes them). orphans: inodes deleted while some
    mount still had them open; they stay in the inode table until the last
    close, and a restarted imgr, which knows no open counts, deletes them
    once its mounts had time to open them again. The per-object table is
    inline; a volume with millions of objects will want it in a B+tree of its
    own, which a later version can add as an appended root Location.

InodeHead (INODE_HEAD, version 1)::

    [inode u64>0, type u8 FileType, mode u12, uid u32, gid u32,
     atime i64, mtime i64, ctime i64, btime i64, size, rdev u64,
     links [[parent u64>0, name bin], ...], xattrs [[name bin, value bin], ...],
     symlink bin|nil, payload Location|nil, accounting [[object, bytes], ...]]

    nlink is len(links); links may not repeat a pair; a directory has at most
    one. size is an off_t (< 2**63). xattrs are sorted by name. accounting
    maps object -> bytes of this inode's payload (data extents and payload
    B+tree pages) stored there; it drives garbage collection.

Values of the B+trees (not framed; the B+tree page record's version covers
them, so a change to one of them is a new page version):

    inode table  inode u64 -> head Location [object, offset, length]
    directory    name bin  -> [inode u64>0, type u8 FileType]
    extent map   offset u64 -> [length u64>0, object u64>0, object offset u64]

Every decoder raises LayoutError and nothing else; every encoder first checks
its own output with the decoder, so a writer cannot produce a record its
readers reject.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

from layout.codec import MAX_U64, Location, expect_bytes, expect_int, expect_list, show
from layout.errors import LayoutError
from layout.framing import RecordType, frame, unframe

K = TypeVar("K")
V = TypeVar("V")

MIN_I64 = -(1 << 63)
MAX_I64 = (1 << 63) - 1
MAX_U32 = (1 << 32) - 1
MAX_MODE = 0o7777  # permission bits with setuid, setgid, sticky
NAME_MAX = 255
XATTR_NAME_MAX = 255
XATTR_VALUE_MAX = 64 * 1024
# A head is read whole for every stat, so its xattrs get a total budget too.
XATTR_TOTAL_MAX = 1024 * 1024
SYMLINK_MAX = 4095  # PATH_MAX less the terminating NUL


class FileType(enum.IntEnum):
    """The Linux DT_* numbers, which are also S_IFMT >> 12: readdir and stat
    can use them as they are (mode == type << 12 | permission bits)."""

    FIFO = 1
    CHAR_DEVICE = 2
    DIRECTORY = 4
    BLOCK_DEVICE = 6
    REGULAR = 8
    SYMLINK = 10
    SOCKET = 12


# --- wire helpers -----------------------------------------------------------


def _i64(wire: Any, where: str, what: str) -> int:
    return expect_int(wire, where, what, MIN_I64, MAX_I64)


def _file_type(wire: Any, where: str, what: str = "file type") -> FileType:
    if type(wire) is not int or wire not in FileType._value2member_map_:
        raise LayoutError(
            f"{what} must be one of {[int(t) for t in FileType]}, got {show(wire)}", where
        )
    return FileType(wire)


def _location(wire: Any, where: str, what: str) -> Location:
    loc = Location.from_wire(wire, f"{what}, {where}")
    if loc.object == 0:
        raise LayoutError(f"{what} points into object 0, the checkpoint backup", where)
    return loc


def _optional_location(wire: Any, where: str, what: str) -> Location | None:
    return None if wire is None else _location(wire, where, what)


def _sorted_pairs(
    wire: Any,
    where: str,
    what: str,
    key: Callable[[Any, str, str], K],
    value: Callable[[Any, str, str], V],
) -> dict[K, V]:
    """A map written as [[key, value], ...] with strictly increasing keys."""
    result: dict[K, V] = {}
    previous: Any = None
    for item in expect_list(wire, where, what):
        k_wire, v_wire = expect_list(item, where, f"{what} entry", 2)
        k = key(k_wire, where, f"{what} key")
        if previous is not None and not previous < k:
            raise LayoutError(f"{what} keys are not strictly increasing at {show(k)}", where)
        previous = k
        result[k] = value(v_wire, where, f"{what} value")
    return result


def _increasing(
    wire: Any, where: str, what: str, item: Callable[[Any, str, str], int]
) -> tuple[int, ...]:
    values = tuple(item(v, where, what) for v in expect_list(wire, where, what))
    if any(a >= b for a, b in zip(values, values[1:], strict=False)):
        raise LayoutError(f"{what} are not strictly increasing", where)
    return values


def _pairs_to_wire(mapping: dict[Any, Any]) -> list[list[Any]]:
    return [[k, mapping[k]] for k in sorted(mapping)]


def _object_number(wire: Any, where: str, what: str) -> int:
    return expect_int(wire, where, what, 1)


def _positive(wire: Any, where: str, what: str) -> int:
    return expect_int(wire, where, what, 1)


def _fields(payload: Any, where: str, what: str, length: int) -> list[Any]:
    if type(payload) is not list or len(payload) != length:
        raise LayoutError(f"{what} must be a list of {length} fields, got {show(payload)}", where)
    return payload


def check_name(wire: Any, where: str, what: str = "name") -> bytes:
    """A directory entry name: 1..255 bytes, no b"/" or NUL, not . or .."""
    name = expect_bytes(wire, where, what, NAME_MAX)
    if not name or b"/" in name or b"\0" in name or name in (b".", b".."):
        raise LayoutError(f"{what} {show(name)} is not a valid file name", where)
    return name


class _Framed:
    """encode()/decode() shared by the framed records."""

    __slots__ = ()
    KIND: ClassVar[RecordType]
    VERSION: ClassVar[int]  # the version written
    READS: ClassVar[frozenset[int]] = frozenset()  # older versions still read

    def to_wire(self) -> list[Any]:
        raise NotImplementedError

    @classmethod
    def from_wire(cls, version: int, payload: Any, where: str) -> Self:
        raise NotImplementedError

    def encode(self) -> bytes:
        wire = self.to_wire()
        type(self).from_wire(self.VERSION, wire, f"encoding a {self.KIND.name}")
        return frame(self.KIND, self.VERSION, wire)

    @classmethod
    def decode(cls, data: bytes, where: str) -> Self:
        version, payload = unframe(data, cls.KIND, cls.READS | {cls.VERSION}, where)
        return cls.from_wire(version, payload, where)


# --- checkpoint and superblock ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint(_Framed):
    KIND: ClassVar[RecordType] = RecordType.CHECKPOINT
    VERSION: ClassVar[int] = 1

    volume_id: bytes  # 16 bytes (a UUID)
    sequence: int
    superblock: Location
    next_inode: int
    next_object: int
    time_ns: int

    def to_wire(self) -> list[Any]:
        return [
            self.volume_id,
            self.sequence,
            self.superblock.to_wire(),
            self.next_inode,
            self.next_object,
            self.time_ns,
        ]

    @classmethod
    def from_wire(cls, version: int, payload: Any, where: str) -> Checkpoint:
        vid, seq, sb, next_inode, next_object, time_ns = _fields(payload, where, "checkpoint", 6)
        if type(vid) is not bytes or len(vid) != 16:
            raise LayoutError(f"volume id must be 16 bytes, got {show(vid)}", where)
        record = cls(
            vid,
            expect_int(seq, where, "checkpoint sequence"),
            _location(sb, where, "superblock location"),
            _positive(next_inode, where, "next inode number"),
            _positive(next_object, where, "next object number"),
            _i64(time_ns, where, "checkpoint time"),
        )
        if record.superblock.object >= record.next_object:
            raise LayoutError(
                f"superblock in object {record.superblock.object} at or above "
                f"next object number {record.next_object}",
                where,
            )
        return record


@dataclass(frozen=True, slots=True)
class Superblock(_Framed):
    KIND: ClassVar[RecordType] = RecordType.SUPERBLOCK
    VERSION: ClassVar[int] = 2
    READS: ClassVar[frozenset[int]] = frozenset({1})

    inode_table: Location | None
    inode_count: int
    object_count: int
    bytes_written: int
    bytes_referenced: int
    referenced: dict[int, int] = field(default_factory=dict)  # object -> referenced bytes
    deleting: tuple[int, ...] = ()  # unreferenced objects, strictly increasing
    orphans: tuple[int, ...] = ()  # inodes deleted while open, strictly increasing

    def to_wire(self) -> list[Any]:
        return [
            None if self.inode_table is None else self.inode_table.to_wire(),
            self.inode_count,
            self.object_count,
            self.bytes_written,
            self.bytes_referenced,
            _pairs_to_wire(self.referenced),
            list(self.deleting),
            list(self.orphans),
        ]

    @classmethod
    def from_wire(cls, version: int, payload: Any, where: str) -> Superblock:
        fields = _fields(payload, where, "superblock", 7 if version == 1 else 8)
        root, inodes, objects, written, refd, referenced, deleting = fields[:7]
        orphans = fields[7] if version > 1 else []
        record = cls(
            _optional_location(root, where, "inode table root"),
            expect_int(inodes, where, "inode count"),
            expect_int(objects, where, "object count"),
            expect_int(written, where, "bytes written"),
            expect_int(refd, where, "bytes referenced"),
            _sorted_pairs(referenced, where, "referenced bytes", _object_number, _positive),
            _increasing(deleting, where, "objects being deleted", _object_number),
            _increasing(orphans, where, "orphan inodes", _positive),
        )
        record._check(where)
        return record

    def _check(self, where: str) -> None:
        if sum(self.referenced.values()) != self.bytes_referenced:
            raise LayoutError("bytes referenced is not the sum of the per-object table", where)
        if self.bytes_referenced > self.bytes_written:
            raise LayoutError("more bytes referenced than written", where)
        if len(self.referenced) + len(self.deleting) > self.object_count:
            raise LayoutError("object count is below the objects listed", where)
        both = set(self.referenced).intersection(self.deleting)
        if both:
            raise LayoutError(f"object {min(both)} both referenced and being deleted", where)
        if self.inode_table is None and self.inode_count:
            raise LayoutError(f"{self.inode_count} inodes but no inode table root", where)


# --- inode head -------------------------------------------------------------

# Types whose head may point at a payload B+tree (entries or extents).
_HAS_PAYLOAD = frozenset({FileType.REGULAR, FileType.DIRECTORY})
_DEVICES = frozenset({FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE})


@dataclass(frozen=True, slots=True)
class InodeHead(_Framed):
    """Everything stat and getxattr need, and the root of the inode's payload.

    Frozen but shallow: treat xattrs and accounting as read-only and build a
    new head with dataclasses.replace().
    """

    KIND: ClassVar[RecordType] = RecordType.INODE_HEAD
    VERSION: ClassVar[int] = 1

    inode: int
    type: FileType
    mode: int  # permission bits only (12); the S_IFMT bits come from type
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    btime_ns: int
    size: int = 0
    rdev: int = 0
    links: tuple[tuple[int, bytes], ...] = ()  # (parent inode, name); nlink = len
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    symlink: bytes | None = None
    payload: Location | None = None
    accounting: dict[int, int] = field(default_factory=dict)  # object -> bytes

    @property
    def nlink(self) -> int:
        return len(self.links)

    def to_wire(self) -> list[Any]:
        return [
            self.inode,
            int(self.type),
            self.mode,
            self.uid,
            self.gid,
            self.atime_ns,
            self.mtime_ns,
            self.ctime_ns,
            self.btime_ns,
            self.size,
            self.rdev,
            [[parent, name] for parent, name in self.links],
            _pairs_to_wire(self.xattrs),
            self.symlink,
            None if self.payload is None else self.payload.to_wire(),
            _pairs_to_wire(self.accounting),
        ]

    @classmethod
    def from_wire(cls, version: int, payload: Any, where: str) -> InodeHead:
        w = _fields(payload, where, "inode head", 16)
        inode = _positive(w[0], where, "inode number")
        where = f"inode {inode}, {where}"
        atime, mtime, ctime, btime = (_i64(t, where, "time") for t in w[5:9])
        head = cls(
            inode,
            _file_type(w[1], where),
            expect_int(w[2], where, "mode", 0, MAX_MODE),
            expect_int(w[3], where, "uid", 0, MAX_U32),
            expect_int(w[4], where, "gid", 0, MAX_U32),
            atime,
            mtime,
            ctime,
            btime,
            expect_int(w[9], where, "size", 0, MAX_I64),
            expect_int(w[10], where, "rdev"),
            _links(w[11], where),
            _xattrs(w[12], where),
            None if w[13] is None else expect_bytes(w[13], where, "symlink target", SYMLINK_MAX),
            _optional_location(w[14], where, "payload root"),
            _sorted_pairs(w[15], where, "accounting", _object_number, _positive),
        )
        head._check(where)
        return head

    def _check(self, where: str) -> None:
        if (self.symlink is not None) != (self.type is FileType.SYMLINK):
            wanted = "must" if self.type is FileType.SYMLINK else "must not"
            raise LayoutError(f"a {self.type.name} {wanted} have a symlink target", where)
        if self.symlink is not None and (not self.symlink or b"\0" in self.symlink):
            raise LayoutError("symlink target is empty or holds a NUL", where)
        if self.symlink is not None and self.size != len(self.symlink):
            raise LayoutError("symlink size is not the length of its target", where)
        if self.type not in _HAS_PAYLOAD and (self.payload is not None or self.accounting):
            raise LayoutError(f"a {self.type.name} has no payload", where)
        if self.type not in _HAS_PAYLOAD and self.type is not FileType.SYMLINK and self.size:
            raise LayoutError(f"a {self.type.name} has size 0", where)
        if self.rdev and self.type not in _DEVICES:
            raise LayoutError(f"a {self.type.name} has no device number", where)
        if self.type is FileType.DIRECTORY and len(self.links) > 1:
            raise LayoutError("a directory has more than one link", where)


def _links(wire: Any, where: str) -> tuple[tuple[int, bytes], ...]:
    links = []
    for item in expect_list(wire, where, "link table"):
        parent, name = expect_list(item, where, "link", 2)
        links.append((_positive(parent, where, "parent inode"), check_name(name, where)))
    if len(set(links)) != len(links):
        raise LayoutError("link table repeats a (parent, name)", where)
    return tuple(links)


def _xattrs(wire: Any, where: str) -> dict[bytes, bytes]:
    xattrs = _sorted_pairs(wire, where, "xattrs", _xattr_name, _xattr_value)
    if sum(len(k) + len(v) for k, v in xattrs.items()) > XATTR_TOTAL_MAX:
        raise LayoutError(f"xattrs exceed {XATTR_TOTAL_MAX} bytes in total", where)
    return xattrs


def _xattr_name(wire: Any, where: str, what: str) -> bytes:
    name = expect_bytes(wire, where, what, XATTR_NAME_MAX)
    if not name or b"\0" in name:
        raise LayoutError(f"{what} {show(name)} is empty or holds a NUL", where)
    return name


def _xattr_value(wire: Any, where: str, what: str) -> bytes:
    return expect_bytes(wire, where, what, XATTR_VALUE_MAX)


# --- B+tree values ----------------------------------------------------------


class InodeTableCodec:
    """Inode table value: the Location of the inode's current head.

    No generation counter: objects are never rewritten, so a new head always
    has a new Location, and comparing Locations detects any change.
    """

    def encode(self, value: Location) -> Any:
        return _checked(self, value.to_wire())

    def decode(self, wire: Any, where: str) -> Location:
        return _location(wire, where, "inode head location")


@dataclass(frozen=True, slots=True)
class DirEntry:
    inode: int
    type: FileType


class DirNameCodec:
    """Directory B+tree key: a file name (see check_name)."""

    def encode(self, value: bytes) -> Any:
        return _checked(self, value)

    def decode(self, wire: Any, where: str) -> bytes:
        return check_name(wire, where)


class DirEntryCodec:
    def encode(self, value: DirEntry) -> Any:
        return _checked(self, [value.inode, int(value.type)])

    def decode(self, wire: Any, where: str) -> DirEntry:
        inode, kind = expect_list(wire, where, "directory entry", 2)
        return DirEntry(_positive(inode, where, "entry inode"), _file_type(kind, where))


@dataclass(frozen=True, slots=True)
class Extent:
    """`length` bytes of a file, stored in `object` from `offset` on."""

    length: int
    object: int
    offset: int


class ExtentCodec:
    def encode(self, value: Extent) -> Any:
        return _checked(self, [value.length, value.object, value.offset])

    def decode(self, wire: Any, where: str) -> Extent:
        length, obj, offset = expect_list(wire, where, "extent", 3)
        extent = Extent(
            _positive(length, where, "extent length"),
            _object_number(obj, where, "extent object"),
            expect_int(offset, where, "extent object offset"),
        )
        if extent.offset + extent.length > MAX_U64 + 1:
            raise LayoutError("extent runs past the end of a 64-bit object", where)
        return extent


def _checked(codec: Any, wire: Any) -> Any:
    codec.decode(wire, f"encoding with {type(codec).__name__}")
    return wire
