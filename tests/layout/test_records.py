"""Round trips, rejections and naming for layout.records and layout.naming."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layout.codec import MAX_U64, Location
from layout.errors import LayoutError
from layout.framing import RecordType, frame, frame_body
from layout.naming import object_name, object_number
from layout.records import (
    MAX_I64,
    MIN_I64,
    XATTR_VALUE_MAX,
    Checkpoint,
    DirEntry,
    DirEntryCodec,
    DirNameCodec,
    Extent,
    ExtentCodec,
    FileType,
    InodeHead,
    InodeTableCodec,
    Superblock,
)

u64 = st.integers(0, MAX_U64)
positive = st.integers(1, MAX_U64)
i64 = st.integers(MIN_I64, MAX_I64)
times = st.one_of(st.sampled_from([MIN_I64, -1, 0, MAX_I64]), i64)
names = (
    st.lists(st.integers(1, 255).filter(lambda b: b != ord("/")), min_size=1, max_size=255)
    .map(bytes)
    .filter(lambda n: n not in (b".", b".."))
)
locations = st.builds(Location, positive, u64, positive)


def wire_of(codec, value):
    """What a B+tree page would hand back: the encoding through msgpack and back."""
    return msgpack.unpackb(msgpack.packb(codec.encode(value), use_bin_type=True), raw=False)


@st.composite
def checkpoints(draw):
    superblock = draw(locations.filter(lambda loc: loc.object < MAX_U64))
    return Checkpoint(
        draw(st.binary(min_size=16, max_size=16)),
        draw(u64),
        superblock,
        draw(positive),
        draw(st.integers(superblock.object + 1, MAX_U64)),
        draw(times),
    )


@st.composite
def superblocks(draw):
    referenced = draw(st.dictionaries(positive, st.integers(1, 2**48), max_size=20))
    deleting = sorted(draw(st.sets(positive, max_size=10)) - set(referenced))
    total = sum(referenced.values())
    root = draw(st.none() | locations)
    return Superblock(
        root,
        0 if root is None else draw(u64),
        len(referenced) + len(deleting) + draw(st.integers(0, 2**32)),
        total + draw(st.integers(0, MAX_U64 - total)),
        total,
        referenced,
        tuple(deleting),
        tuple(sorted(draw(st.sets(positive, max_size=10)))),
    )


xattr_names = st.binary(min_size=1, max_size=255).filter(lambda n: b"\0" not in n)
xattr_values = st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"v" * XATTR_VALUE_MAX]))


@st.composite
def inode_heads(draw, kind=None):
    kind = draw(st.sampled_from(FileType)) if kind is None else kind
    symlink = None
    if kind is FileType.SYMLINK:
        symlink = draw(st.binary(min_size=1, max_size=4095).filter(lambda t: b"\0" not in t))
    with_payload = kind in (FileType.REGULAR, FileType.DIRECTORY)
    links = draw(st.lists(st.tuples(positive, names), max_size=1 if kind == 4 else 5, unique=True))
    if symlink is not None:
        size = len(symlink)
    else:
        size = draw(st.integers(0, MAX_I64)) if with_payload else 0
    return InodeHead(
        inode=draw(positive),
        type=kind,
        mode=draw(st.integers(0, 0o7777)),
        uid=draw(st.integers(0, 2**32 - 1)),
        gid=draw(st.integers(0, 2**32 - 1)),
        atime_ns=draw(times),
        mtime_ns=draw(times),
        ctime_ns=draw(times),
        btime_ns=draw(times),
        size=size,
        rdev=draw(u64) if kind in (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE) else 0,
        links=tuple(links),
        xattrs=draw(st.dictionaries(xattr_names, xattr_values, max_size=4)),
        symlink=symlink,
        payload=draw(st.none() | locations) if with_payload else None,
        accounting=draw(st.dictionaries(positive, positive, max_size=8)) if with_payload else {},
    )


extents = st.builds(Extent, positive, positive, u64).filter(
    lambda e: e.offset + e.length <= MAX_U64 + 1
)
dir_entries = st.builds(DirEntry, positive, st.sampled_from(FileType))

# --- round trips ---------------------------------------------------------------


@given(checkpoints())
def test_checkpoint_round_trip(record):
    assert Checkpoint.decode(record.encode(), "test") == record


@given(superblocks())
def test_superblock_round_trip(record):
    assert Superblock.decode(record.encode(), "test") == record


@settings(max_examples=300)
@given(inode_heads())
def test_inode_head_round_trip(record):
    decoded = InodeHead.decode(record.encode(), "test")
    assert decoded == record
    assert decoded.nlink == len(record.links)


@pytest.mark.parametrize(
    ("codec", "values"),
    [
        (InodeTableCodec(), locations),
        (DirEntryCodec(), dir_entries),
        (DirNameCodec(), names),
        (ExtentCodec(), extents),
    ],
)
@given(data=st.data())
def test_codec_round_trip(codec, values, data):
    value = data.draw(values)
    assert codec.decode(wire_of(codec, value), "test") == value


def test_extremes_round_trip():
    biggest = InodeHead(
        inode=MAX_U64,
        type=FileType.REGULAR,
        mode=0o7777,
        uid=2**32 - 1,
        gid=2**32 - 1,
        atime_ns=MIN_I64,
        mtime_ns=MAX_I64,
        ctime_ns=-1,
        btime_ns=0,
        size=MAX_I64,
        links=((MAX_U64, b"n" * 255), (1, b"\xff")),
        xattrs={b"x" * 255: b"v" * XATTR_VALUE_MAX, b"user.a": b""},
        payload=Location(MAX_U64, MAX_U64, MAX_U64),
        accounting={1: 1, MAX_U64: MAX_U64},
    )
    assert InodeHead.decode(biggest.encode(), "test") == biggest
    smallest = InodeHead(1, FileType.FIFO, 0, 0, 0, 0, 0, 0, 0)
    assert InodeHead.decode(smallest.encode(), "test") == smallest
    empty = Superblock(None, 0, 0, 0, 0)
    assert Superblock.decode(empty.encode(), "test") == empty
    ext = Extent(1, MAX_U64, MAX_U64)
    assert ExtentCodec().decode(wire_of(ExtentCodec(), ext), "test") == ext


# --- rejections ----------------------------------------------------------------

CHECKPOINT = Checkpoint(b"v" * 16, 7, Location(5, 0, 100), 10, 20, 1_700_000_000_000_000_000)
SUPERBLOCK = Superblock(Location(5, 100, 50), 3, 4, 1000, 300, {5: 200, 6: 100}, (7,))
HEAD = InodeHead(
    2, FileType.REGULAR, 0o644, 1000, 1000, 1, 2, 3, 4, size=10,
    links=((1, b"file"),), xattrs={b"user.k": b"v"}, payload=Location(6, 0, 10),
    accounting={6: 10},
)  # fmt: skip
RECORDS = [CHECKPOINT, SUPERBLOCK, HEAD]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
@pytest.mark.parametrize("as_type", [Checkpoint, Superblock, InodeHead])
def test_decoding_as_the_wrong_type_fails(record, as_type):
    if isinstance(record, as_type):
        return
    with pytest.raises(LayoutError, match=f"expected a {as_type.KIND.name} record"):
        as_type.decode(record.encode(), "test")


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
@pytest.mark.parametrize("version", [0, 3, 255])
def test_unknown_version_fails(record, version):
    data = frame(record.KIND, version, record.to_wire())
    with pytest.raises(LayoutError, match=f"version {version}"):
        type(record).decode(data, "test")


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_truncation_fails(record):
    data = record.encode()
    for length in range(len(data)):
        with pytest.raises(LayoutError):
            type(record).decode(data[:length], "test")
    for cut in range(1, len(data) - 16):  # the body cut short, the trailer kept
        with pytest.raises(LayoutError):
            type(record).decode(data[cut:], "test")


def test_error_names_where():
    with pytest.raises(LayoutError, match=r"object 00a1 at 4096") as info:
        InodeHead.decode(b"garbage" * 4, "object 00a1 at 4096")
    assert info.value.where == "object 00a1 at 4096"


def head_wire(**changes):
    wire = HEAD.to_wire()
    index = {f.name: i for i, f in enumerate(dataclasses.fields(InodeHead))}
    for name, value in changes.items():
        wire[index[name]] = value
    return wire


BIG = b"v" * XATTR_VALUE_MAX  # 16 of these pass the 1 MiB total
BAD_HEADS = {
    "inode 0": head_wire(inode=0),
    "negative size": head_wire(size=-1),
    "size past off_t": head_wire(size=2**63),
    "unknown type": head_wire(type=3),
    "type as str": head_wire(type="8"),
    "mode with type bits": head_wire(mode=0o100644),
    "uid past 32 bits": head_wire(uid=2**32),
    "time past int64": head_wire(mtime_ns=2**63),
    "time as float": head_wire(atime_ns=1.5),
    "bool as int": head_wire(uid=True),
    "symlink on a file": head_wire(symlink=b"target"),
    "symlink without target": head_wire(type=10, payload=None, accounting=[], size=0),
    "rdev on a file": head_wire(rdev=5),
    "payload on a fifo": head_wire(type=1, size=0),
    "size on a socket": head_wire(type=12, payload=None, accounting=[]),
    "two links to a dir": head_wire(type=4, links=[[1, b"a"], [1, b"b"]]),
    "duplicate link": head_wire(links=[[1, b"a"], [1, b"a"]]),
    "link name with slash": head_wire(links=[[1, b"a/b"]]),
    "link name dot": head_wire(links=[[1, b"."]]),
    "link name dotdot": head_wire(links=[[1, b".."]]),
    "link name empty": head_wire(links=[[1, b""]]),
    "link name NUL": head_wire(links=[[1, b"a\0"]]),
    "link name 256": head_wire(links=[[1, b"a" * 256]]),
    "link name str": head_wire(links=[[1, "a"]]),
    "parent 0": head_wire(links=[[0, b"a"]]),
    "xattr name 256": head_wire(xattrs=[[b"a" * 256, b""]]),
    "xattr name empty": head_wire(xattrs=[[b"", b""]]),
    "xattr value too big": head_wire(xattrs=[[b"a", b"v" * (XATTR_VALUE_MAX + 1)]]),
    "xattrs out of order": head_wire(xattrs=[[b"b", b""], [b"a", b""]]),
    "xattrs repeated": head_wire(xattrs=[[b"a", b""], [b"a", b""]]),
    "xattrs too big in all": head_wire(xattrs=[[bytes([i]), BIG] for i in range(1, 17)]),
    "xattrs as map": head_wire(xattrs={b"a": b""}),
    "accounting object 0": head_wire(accounting=[[0, 10]]),
    "accounting zero bytes": head_wire(accounting=[[6, 0]]),
    "payload in object 0": head_wire(payload=[0, 0, 10]),
    "payload of length 0": head_wire(payload=[6, 0, 0]),
    "payload short": head_wire(payload=[6, 0]),
}  # fmt: skip


@pytest.mark.parametrize("wire", BAD_HEADS.values(), ids=BAD_HEADS.keys())
def test_invalid_inode_head_fails(wire):
    with pytest.raises(LayoutError):
        InodeHead.decode(frame(RecordType.INODE_HEAD, 1, wire), "test")


def test_missing_and_extra_fields_fail():
    for record in RECORDS:
        wire = record.to_wire()
        for bad in (wire[:-1], [*wire, 0], {"a": 1}, None, 5):
            with pytest.raises(LayoutError, match="fields"):
                type(record).decode(frame(record.KIND, record.VERSION, bad), "test")


BAD_OTHERS = {
    "volume id 15 bytes": (Checkpoint, [b"v" * 15, 7, [5, 0, 1], 10, 20, 0]),
    "volume id str": (Checkpoint, ["v" * 16, 7, [5, 0, 1], 10, 20, 0]),
    "superblock at next object": (Checkpoint, [b"v" * 16, 7, [20, 0, 1], 10, 20, 0]),
    "superblock in object 0": (Checkpoint, [b"v" * 16, 7, [0, 0, 1], 10, 20, 0]),
    "negative sequence": (Checkpoint, [b"v" * 16, -1, [5, 0, 1], 10, 20, 0]),
    "sequence as float": (Checkpoint, [b"v" * 16, 7.0, [5, 0, 1], 10, 20, 0]),
    "sum mismatch": (Superblock, [[5, 0, 1], 3, 4, 1000, 301, [[5, 200], [6, 100]], []]),
    "referenced > written": (Superblock, [[5, 0, 1], 3, 4, 10, 300, [[5, 200], [6, 100]], []]),
    "too few objects": (Superblock, [[5, 0, 1], 3, 2, 1000, 300, [[5, 200], [6, 100]], [7]]),
    "deleting a referenced": (Superblock, [[5, 0, 1], 3, 4, 1000, 300, [[5, 200], [6, 100]], [6]]),
    "deleting unsorted": (Superblock, [[5, 0, 1], 3, 9, 1000, 0, [], [8, 7]]),
    "inodes without root": (Superblock, [None, 3, 9, 1000, 0, [], []]),
}


@pytest.mark.parametrize(("cls", "wire"), BAD_OTHERS.values(), ids=BAD_OTHERS.keys())
def test_invalid_checkpoint_or_superblock_fails(cls, wire):
    with pytest.raises(LayoutError):
        cls.decode(frame(cls.KIND, 1, wire), "test")


BAD_VALUES = [
    (InodeTableCodec(), [0, 0, 1]),
    (InodeTableCodec(), [1, 0, 0]),
    (InodeTableCodec(), [1, 0]),
    (InodeTableCodec(), None),
    (DirEntryCodec(), [0, 8]),
    (DirEntryCodec(), [5, 3]),
    (DirEntryCodec(), [5, 8, 0]),
    (DirEntryCodec(), {"i": 5}),
    (DirNameCodec(), b"a/b"),
    (DirNameCodec(), b".."),
    (DirNameCodec(), b""),
    (DirNameCodec(), "name"),
    (ExtentCodec(), [0, 1, 0]),
    (ExtentCodec(), [1, 0, 0]),
    (ExtentCodec(), [2, 1, MAX_U64]),
    (ExtentCodec(), [1, 1, -1]),
    (ExtentCodec(), [1, 1]),
]


@pytest.mark.parametrize(("codec", "wire"), BAD_VALUES, ids=repr)
def test_invalid_value_fails(codec, wire):
    with pytest.raises(LayoutError):
        codec.decode(wire, "test")


def test_encoding_an_invalid_record_fails():
    with pytest.raises(LayoutError):
        dataclasses.replace(HEAD, symlink=b"x").encode()
    with pytest.raises(LayoutError):
        dataclasses.replace(SUPERBLOCK, bytes_referenced=1).encode()
    with pytest.raises(LayoutError):
        DirEntryCodec().encode(DirEntry(0, FileType.REGULAR))
    with pytest.raises(LayoutError):
        DirNameCodec().encode(b"a/b")


# --- msgpack limits --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"\xc6\xff\xff\xff\xff" + b"x" * 10,  # bin of 4 GiB
        b"\xdb\xff\xff\xff\xff" + b"x" * 10,  # str of 4 GiB
        b"\xdd\xff\xff\xff\xff" + b"\x00" * 10,  # array of 4 G items
        b"\xdf\xff\xff\xff\xff" + b"\x00" * 10,  # map of 4 G pairs
        b"\x96" + b"\xc6\xff\xff\xff\xff",  # a huge bin inside a record's list
        b"\x91" * 100_000 + b"\xc0",  # nested deeper than msgpack's stack
        b"\x81\x91\x00\x00",  # a map keyed by a list
        b"\x90\x90",  # trailing data
    ],
    ids=["bin", "str", "array", "map", "inner-bin", "deep", "list-key", "extra"],
)
def test_hostile_msgpack_fails_fast(body):
    for cls in (Checkpoint, Superblock, InodeHead):
        start = time.perf_counter()
        with pytest.raises(LayoutError):
            cls.decode(frame_body(cls.KIND, 1, body), "test")
        assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize("depth", [500, 1000, 1024])
def test_deep_nesting_msgpack_accepts_is_a_layout_error(depth):
    nested = b"\x91" * depth + b"\xc0"  # msgpack itself unpacks up to 1024 levels
    for cls, length in ((Checkpoint, 6), (Superblock, 7), (InodeHead, 16)):
        for position in range(length):
            body = bytes([0x90 | length]) + b"\x01" * position + nested
            body += b"\x01" * (length - position - 1)
            with pytest.raises(LayoutError):
                cls.decode(frame_body(cls.KIND, 1, body), "test")
    deep = msgpack.unpackb(nested)
    for codec in (InodeTableCodec(), DirEntryCodec(), DirNameCodec(), ExtentCodec()):
        for wire in (deep, [deep, deep, deep], [1, deep, 1]):
            with pytest.raises(LayoutError):
                codec.decode(wire, "test")


# --- naming ----------------------------------------------------------------------


@given(u64)
def test_object_name_round_trip(number):
    name = object_name(number)
    assert len(name) == 16 and name == name.lower()
    assert object_number(name) == number


def test_object_name_examples():
    assert object_name(0) == "0000000000000000"
    assert object_name(1) == "1000000000000000"
    assert object_name(0xABC) == "cba0000000000000"
    assert object_name(MAX_U64) == "f" * 16


@pytest.mark.parametrize(
    "name",
    ["", "1", "1" * 15, "1" * 17, "A000000000000000", "g000000000000000", " 100000000000000",
     "100000000000000\n", "+100000000000000", "-100000000000000", "0x00000000000000",
     "1_00000000000000", "١٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠", b"1000000000000000", None, 1],
)  # fmt: skip
def test_object_number_rejects(name):
    with pytest.raises(LayoutError, match="not an object name"):
        object_number(name)


@pytest.mark.parametrize("number", [-1, 2**64, 1.0, "1", True, None])
def test_object_name_rejects(number):
    with pytest.raises(ValueError):
        object_name(number)


def test_consecutive_names_spread_over_prefixes():
    start = 0x1234_5678_9ABC  # any run of consecutive numbers, not only from 0
    counts = Counter(object_name(n)[:2] for n in range(start, start + 65_536))
    assert len(counts) == 256
    assert set(counts.values()) == {256}  # exactly even: the low byte cycles
    first = Counter(object_name(n)[0] for n in range(start, start + 16))
    assert len(first) == 16  # even 16 consecutive objects hit 16 distinct ranges


def test_a_version_1_superblock_still_reads_with_no_orphans():
    wire = SUPERBLOCK.to_wire()[:7]
    decoded = Superblock.decode(frame(Superblock.KIND, 1, wire), "test")
    assert decoded == SUPERBLOCK and decoded.orphans == ()


def test_superblock_orphans_must_be_increasing_inode_numbers():
    for orphans in ([9, 3], [0], [3, 3]):
        wire = [*SUPERBLOCK.to_wire()[:7], orphans]
        with pytest.raises(LayoutError, match="orphan|inode"):
            Superblock.decode(frame(Superblock.KIND, 2, wire), "test")
