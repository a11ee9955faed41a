"""What fsck found and did: problems, orphan objects, lost inodes; its words and its exit code.

A problem is tied to the place it was found (an object and an offset, when
there is one) and to the inodes it affects; their paths are worked out once
the whole namespace is known (`Report.resolve`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

from layout.naming import object_name

CLEAN, REPAIRED, DAMAGED = 0, 1, 4

PATHS_SHOWN = 20  # per problem in the summary for people

TABLE = 0  # the owner of the inode table's pages and of the superblock, in `inodes`


@dataclass
class Problem:
    kind: str  # record, block, missing, links, tree, accounting, space, extent, structure
    message: str
    object: int | None = None
    offset: int | None = None
    inodes: set[int] = field(default_factory=set)
    paths: list[str] = field(default_factory=list)  # filled by Report.resolve

    def where(self) -> str:
        if self.object is None:
            return ""
        at = "" if self.offset is None else f" at {self.offset}"
        return f"object {object_name(self.object)}{at}: "

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "object": None if self.object is None else object_name(self.object),
            "offset": self.offset,
            "message": self.message,
            "inodes": sorted(self.inodes),
            "paths": self.paths,
        }


@dataclass
class Orphan:
    number: int
    size: int
    modified: float | None = None
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "object": object_name(self.number),
            "size": self.size,
            "modified": self.modified,
            "deleted": self.deleted,
        }


@dataclass
class Lost:
    inode: int
    type: str
    name: str  # where its link table last put it
    moved_to: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "inode": self.inode,
            "type": self.type,
            "name": self.name,
            "moved_to": self.moved_to,
        }


@dataclass
class Report:
    volume: str
    url: str
    sequence: int | None = None
    problems: list[Problem] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    lost: list[Lost] = field(default_factory=list)
    complete: bool = True  # every structure reachable from the checkpoint was read
    not_repaired: list[str] = field(default_factory=list)  # why a repair was not made
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def resolve(self, paths_of: Any) -> None:
        """Fill each problem's paths: `paths_of(inode) -> list[str]`."""
        for problem in self.problems:
            found = set(problem.paths)
            for inode in problem.inodes:
                found.update(paths_of(inode))
            problem.paths = sorted(found)

    @property
    def left(self) -> int:
        """Problems not repaired."""
        return (
            len(self.problems)
            + sum(not o.deleted for o in self.orphans)
            + sum(lost.moved_to is None for lost in self.lost)
        )

    @property
    def found(self) -> int:
        return len(self.problems) + len(self.orphans) + len(self.lost)

    @property
    def exit_code(self) -> int:
        if self.left:
            return DAMAGED
        return REPAIRED if self.found else CLEAN

    @property
    def result(self) -> str:
        return {CLEAN: "clean", REPAIRED: "repaired", DAMAGED: "damaged"}[self.exit_code]

    def to_json(self) -> dict[str, Any]:
        return {
            "volume": self.volume,
            "url": self.url,
            "checkpoint": self.sequence,
            "result": self.result,
            "exit_code": self.exit_code,
            "complete": self.complete,
            "counts": self.counts,
            "problems": [p.to_json() for p in self.problems],
            "orphan_objects": [o.to_json() for o in self.orphans],
            "lost_inodes": [lost.to_json() for lost in self.lost],
            "not_repaired": self.not_repaired,
        }

    def write_json(self, out: TextIO) -> None:
        json.dump(self.to_json(), out, indent=2)
        out.write("\n")

    def write_text(self, out: TextIO) -> None:
        c = self.counts
        out.write(
            f"volume {self.volume}, checkpoint {self.sequence}: {c.get('inodes', 0)} inodes, "
            f"{c.get('objects', 0)} objects, {_size(c.get('bytes_checked', 0))} of data checked\n"
        )
        for problem in self.problems:
            out.write(f"{problem.where()}{problem.message}\n")
            for path in problem.paths[:PATHS_SHOWN]:
                out.write(f"    {path}\n")
            hidden = len(problem.paths) - PATHS_SHOWN
            if hidden > 0:
                out.write(f"    ... and {hidden} more (all with --json)\n")
        for orphan in self.orphans:
            done = " [deleted]" if orphan.deleted else ""
            out.write(
                f"orphan object {object_name(orphan.number)} ({_size(orphan.size)}): "
                f"referenced by nothing{done}\n"
            )
        for lost in self.lost:
            done = f" [moved to {lost.moved_to}]" if lost.moved_to else ""
            out.write(f"lost inode {lost.inode} ({lost.type.lower()}, was {lost.name}){done}\n")
        if not self.complete:
            out.write("the walk was incomplete: objects it could not reach are not listed\n")
        for reason in self.not_repaired:
            out.write(f"not repaired: {reason}\n")
        left = self.left
        summary = {
            CLEAN: "clean",
            REPAIRED: f"repaired: all {self.found} problems fixed",
            DAMAGED: f"damaged: {left} problem{'s' if left != 1 else ''} left",
        }[self.exit_code]
        out.write(f"{summary}\n")


def _size(nbytes: int) -> str:
    value, unit = float(nbytes), "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{nbytes} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
