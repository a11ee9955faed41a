"""Mutated records fed to every decoder: LayoutError is the only way to fail.

Byte-level damage mostly dies at the trailer's checksum, which tests only the
framing. So half the mutations change the msgpack *structure* of a valid
payload and re-frame it with a good trailer, which is what exercises the
schema validation; the test counts how many got that far.
"""

from __future__ import annotations

import random
import reprlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layout.codec import MAX_U64, Location
from layout.errors import LayoutError
from layout.framing import RecordType, frame, frame_body, unframe
from layout.records import (
    MAX_I64,
    MIN_I64,
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

SEED = 0x0B7F5
MUTATIONS = 120_000
BOUNDARY_INTS = [0, 1, -1, 2, 255, 256, 2**32 - 1, 2**32, MAX_I64, MAX_I64 + 1, MAX_U64, MIN_I64]
FRAMED = (Checkpoint, Superblock, InodeHead)
CODECS = (InodeTableCodec(), DirEntryCodec(), DirNameCodec(), ExtentCodec())
SHOW = reprlib.Repr()
SHOW.maxlevel, SHOW.maxlist, SHOW.maxother, SHOW.maxstring = 8, 20, 2000, 200

# --- a corpus of valid records ---------------------------------------------------


def rand_int(rng: random.Random, low: int = 0, high: int = MAX_U64) -> int:
    if rng.random() < 0.3:
        return rng.choice([low, high])
    return rng.randint(low, min(high, low + rng.choice([10, 2**16, 2**40, high - low])))


def rand_name(rng: random.Random) -> bytes:
    alphabet = [b for b in range(1, 256) if b != ord("/")]
    name = bytes(rng.choice(alphabet) for _ in range(rng.choice([1, 2, 8, 255])))
    return b"n" + name[1:] if name in (b".", b"..") else name


def rand_location(rng: random.Random) -> Location:
    return Location(rand_int(rng, 1, 1000), rand_int(rng), rand_int(rng, 1))


def rand_head(rng: random.Random) -> InodeHead:
    kind = rng.choice(list(FileType))
    symlink = bytes(rng.randint(1, 255) for _ in range(rng.randint(1, 40)))
    payload = kind in (FileType.REGULAR, FileType.DIRECTORY)
    links = {(rand_int(rng, 1), rand_name(rng)) for _ in range(rng.randint(0, 3))}
    if kind is FileType.DIRECTORY:
        links = set(list(links)[:1])
    return InodeHead(
        inode=rand_int(rng, 1),
        type=kind,
        mode=rng.randint(0, 0o7777),
        uid=rand_int(rng, 0, 2**32 - 1),
        gid=rand_int(rng, 0, 2**32 - 1),
        atime_ns=rand_int(rng, MIN_I64, MAX_I64),
        mtime_ns=rand_int(rng, MIN_I64, MAX_I64),
        ctime_ns=rand_int(rng, 0, MAX_I64),
        btime_ns=rand_int(rng, MIN_I64, 0),
        size=len(symlink) if kind is FileType.SYMLINK else rand_int(rng, 0, MAX_I64) * payload,
        rdev=rand_int(rng) if kind in (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE) else 0,
        links=tuple(sorted(links)),
        xattrs={
            rand_name(rng): rng.randbytes(rng.randint(0, 30)) for _ in range(rng.randint(0, 3))
        },
        symlink=symlink if kind is FileType.SYMLINK else None,
        payload=rand_location(rng) if payload and rng.random() < 0.8 else None,
        accounting={rand_int(rng, 1): rand_int(rng, 1) for _ in range(rng.randint(0, 4))}
        if payload
        else {},
    )


def rand_superblock(rng: random.Random) -> Superblock:
    referenced = {
        rand_int(rng, 1, 10**6): rand_int(rng, 1, 2**40) for _ in range(rng.randint(0, 6))
    }
    deleting = sorted({rand_int(rng, 10**6 + 1) for _ in range(rng.randint(0, 3))})
    total = sum(referenced.values())
    return Superblock(
        rand_location(rng),
        rand_int(rng),
        len(referenced) + len(deleting) + rng.randint(0, 5),
        total + rand_int(rng, 0, 2**50),
        total,
        referenced,
        tuple(deleting),
    )


def rand_checkpoint(rng: random.Random) -> Checkpoint:
    superblock = rand_location(rng)
    return Checkpoint(
        rng.randbytes(16),
        rand_int(rng),
        superblock,
        rand_int(rng, 1),
        rand_int(rng, superblock.object + 1),
        rand_int(rng, MIN_I64, MAX_I64),
    )


def rand_value(rng: random.Random, codec: Any) -> Any:
    if isinstance(codec, InodeTableCodec):
        return rand_location(rng)
    if isinstance(codec, DirEntryCodec):
        return DirEntry(rand_int(rng, 1), rng.choice(list(FileType)))
    if isinstance(codec, DirNameCodec):
        return rand_name(rng)
    return Extent(rand_int(rng, 1, 2**40), rand_int(rng, 1), rand_int(rng, 0, 2**60))


def corpus(rng: random.Random) -> dict[Any, list[Any]]:
    makers = {Checkpoint: rand_checkpoint, Superblock: rand_superblock, InodeHead: rand_head}
    found: dict[Any, list[Any]] = {
        cls: [make(rng) for _ in range(40)] for cls, make in makers.items()
    }
    for codec in CODECS:
        found[codec] = [rand_value(rng, codec) for _ in range(40)]
    return found


# --- mutations ---------------------------------------------------------------------


def garbage(rng: random.Random, depth: int = 0) -> Any:
    """Any msgpack-able value, mostly of a shape no field expects."""
    pick = rng.randrange(11 if depth < 4 else 8)
    if pick == 0:
        return rng.choice(BOUNDARY_INTS)
    if pick == 1:
        return rng.randint(-(2**63), MAX_U64)
    if pick == 2:
        return rng.choice([0.0, -1.5, float("nan"), float("inf")])
    if pick == 3:
        return rng.choice(["", "a", "é", "8", "name"])
    if pick == 4:
        return rng.randbytes(rng.choice([0, 1, 16, 256, 70_000]))
    if pick == 5:
        return rng.choice([None, True, False])
    if pick == 6:
        return msgpack.ExtType(rng.randrange(128), rng.randbytes(4))
    if pick == 7:
        return rng.choice([b".", b"..", b"a/b", b"\0", b"a" * 256])
    if pick in (8, 9):
        return [garbage(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(["t", "v", 0, 1, b"k", None]): garbage(rng, depth + 1) for _ in range(3)}


def slots(wire: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in the tree, for picking a place to damage."""
    found, stack = [], [wire]
    while stack:
        node = stack.pop()
        keys = range(len(node)) if isinstance(node, list) else list(node)
        for key in keys:
            found.append((node, key))
            if isinstance(node[key], list | dict):
                stack.append(node[key])
    return found


def tweak(rng: random.Random, value: Any) -> Any:
    """A near miss of the right type, or garbage."""
    if type(value) is int:
        near = [value + 1, value - 1, -value, value * 2**32]
        return rng.choice([v for v in near if MIN_I64 <= v <= MAX_U64] + BOUNDARY_INTS)
    if type(value) is bytes:
        longer = value * (256 // len(value) + 1) if value else b"x" * 256
        return rng.choice([b"", value + b"/", value + b"\0", longer, value.decode("latin1")])
    return garbage(rng)


def mutate_tree(rng: random.Random, wire: Any) -> Any:
    """The wire with 1..3 structural changes (the root may be replaced)."""
    for _ in range(rng.randint(1, 3)):
        places = slots(wire) if isinstance(wire, list | dict) else []
        lists = [node for node, _ in places if isinstance(node, list)]
        lists = list({id(n): n for n in lists}.values()) or (
            [wire] if isinstance(wire, list) else []
        )
        op = rng.randrange(8)
        if not places or op == 0:
            wire = garbage(rng) if rng.random() < 0.5 else tweak(rng, wire)
        elif op in (1, 2):
            node, key = rng.choice(places)
            node[key] = tweak(rng, node[key])
        elif op == 3:
            node, key = rng.choice(places)
            node[key] = garbage(rng)
        elif op == 4 and lists:
            target = rng.choice(lists)
            if target:
                del target[rng.randrange(len(target))]
        elif op == 5 and lists:
            target = rng.choice(lists)
            target.insert(rng.randint(0, len(target)), garbage(rng))
        elif op == 6 and lists:
            target = rng.choice(lists)
            if target:
                target.append(target[rng.randrange(len(target))])
                rng.shuffle(target)
        else:
            node, key = rng.choice(places)
            if isinstance(node[key], list):
                node[key] = {rng.choice(["i", "n", 0]): item for item in node[key]}
    return wire


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    op = rng.randrange(6)
    if op == 0:
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return "flip", bytes(out)
    if op == 1:
        cut = rng.randrange(len(data))
        return "truncate", data[:cut] if rng.random() < 0.5 else data[cut:]
    if op == 2:
        return "extend", data + rng.randbytes(rng.randint(1, 32))
    if op == 3:
        return "random", rng.randbytes(rng.choice([0, 1, 15, 16, 17, 64, len(data)]))
    if op == 4:
        at = rng.randrange(len(data))
        return "insert", data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
    body = rng.choice(
        [b"\x91" * rng.randint(1, 1100), b"\xc6\xff\xff\xff\xff", b"\xdd\x7f\xff\xff\xff"]
    )
    return "raw body", body + rng.randbytes(rng.randint(0, 8))


def mutate_framed(rng: random.Random, record: Any) -> tuple[str, bytes]:
    if rng.random() < 0.5:
        return mutate_bytes(rng, record.encode())
    wire = mutate_tree(rng, record.to_wire())
    kind, version, name = record.KIND, record.VERSION, "structure"
    if rng.random() < 0.05:
        kind, version, name = rng.choice(list(RecordType)), rng.randrange(4), "structure, reframed"
    if name == "structure" and rng.random() < 0.05:
        body = mutate_bytes(rng, msgpack.packb(wire))[1]
        return "structure, raw", frame_body(kind, version, body)
    return name, frame(kind, version, wire)


def mutate_value(rng: random.Random, codec: Any, value: Any) -> tuple[str, Any]:
    """A mutated wire value, as a B+tree page's msgpack would hand it over, or
    None when the damaged bytes are no longer msgpack (the page's problem)."""
    wire = codec.encode(value)
    if rng.random() < 0.6:
        return "structure", mutate_tree(rng, wire)
    name, data = mutate_bytes(rng, msgpack.packb(wire))
    try:
        return name, msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        return name, None


# --- the run -------------------------------------------------------------------------


def check(decode: Callable[[Any, str], Any], wire: Any, how: str) -> bool:
    """True if accepted, False if LayoutError; any other exception fails the test."""
    try:
        decode(wire, "fuzz")
    except LayoutError:
        return False
    except Exception as exc:
        shown = SHOW.repr(wire)  # repr() itself may recurse too deep on this input
        pytest.fail(f"{type(exc).__name__}: {exc!s:.200} escaped on {how} {shown}")
    return True


def reaches_validation(cls: Any, data: bytes) -> bool:
    try:
        unframe(data, cls.KIND, frozenset({cls.VERSION}), "fuzz")
    except LayoutError:
        return False
    return True


def test_mutations_raise_only_layout_error():
    rng = random.Random(SEED)
    records = corpus(rng)
    targets = list(records)
    stats: Counter[str] = Counter()
    start = time.perf_counter()
    for _ in range(MUTATIONS):
        target = rng.choice(targets)
        original = rng.choice(records[target])
        if target in FRAMED:
            how, data = mutate_framed(rng, original)
            reached = reaches_validation(target, data)
            ok = check(target.decode, data, how)
            if ok:  # a mutation that is still valid must survive another round trip
                record = target.decode(data, "fuzz")
                assert target.decode(record.encode(), "fuzz") == record
        else:
            how, wire = mutate_value(rng, target, original)
            reached = wire is not None
            ok = reached and check(target.decode, wire, how)
        name = getattr(target, "__name__", type(target).__name__)
        stats[f"{name} total"] += 1
        stats[f"{name} validated"] += reached
        stats[f"{name} accepted"] += ok
    elapsed = time.perf_counter() - start
    report(stats, elapsed)
    for target in targets:
        name = getattr(target, "__name__", type(target).__name__)
        total, validated = stats[f"{name} total"], stats[f"{name} validated"]
        assert validated >= 0.3 * total, f"{name}: only {validated}/{total} reached validation"
        assert stats[f"{name} accepted"] < validated, f"{name}: validators rejected nothing"
    assert elapsed < 45


def report(stats: Counter[str], elapsed: float) -> None:
    print(f"\n{MUTATIONS} mutations in {elapsed:.1f}s (seed {SEED:#x})")
    for name in sorted({key.rsplit(" ", 1)[0] for key in stats}):
        total, validated, accepted = (
            stats[f"{name} {k}"] for k in ("total", "validated", "accepted")
        )
        print(
            f"  {name:16} {total:6} mutated, {validated:6} reached validation "
            f"({validated / total:.0%}), {validated - accepted:6} rejected there, "
            f"{accepted:5} still valid"
        )


# --- a structured pass: arbitrary msgpack trees as payloads ----------------------------

wire_trees = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(MIN_I64, MAX_U64)
    | st.floats()
    | st.binary(max_size=20)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=17) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(wire_trees, st.sampled_from([*FRAMED, *CODECS]))
def test_arbitrary_payloads_raise_only_layout_error(wire, target):
    try:
        if target in FRAMED:
            target.decode(frame(target.KIND, target.VERSION, wire), "fuzz")
        else:
            target.decode(wire, "fuzz")
    except LayoutError:
        pass
