"""`objfs status [--json]`: every running objfs stack, with what its daemons report.

For each mount of the registry (objfs.runtime): volume, mount point, URL,
dirty bytes and uploads in flight (iclient's /stats), the age of the
volume's last checkpoint (imgr's /volume/NAME) and both dashboards.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import trio

from objfs import runtime

ASK_SECONDS = 5.0  # per status request: a stuck daemon must not hang `objfs status`


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "status", help="running mounts: dirty bytes, uploads, last checkpoint, dashboards"
    )
    p.add_argument("--json", action="store_true", help="for scripts: {'mounts': [...]}")
    p.set_defaults(handler=status)


def status(args: argparse.Namespace) -> int:
    rows = trio.run(gather, runtime.running())
    if args.json:
        print(json.dumps({"mounts": rows}, indent=2))
    elif not rows:
        print("no objfs mounts")
    else:
        print(table(rows))
    return 0


async def gather(entries: list[runtime.Entry]) -> list[dict[str, Any]]:
    """One row per stack, its daemons asked in parallel."""
    rows: list[dict[str, Any]] = [{} for _ in entries]

    async def fill(i: int, entry: runtime.Entry) -> None:
        rows[i] = await row(entry)

    async with trio.open_nursery() as nursery:
        for i, entry in enumerate(entries):
            nursery.start_soon(fill, i, entry)
    return rows


async def row(entry: runtime.Entry) -> dict[str, Any]:
    stats = await _ask(entry.iclient_status + "stats")
    volume = await _ask(entry.imgr_status + "volume/" + quote(entry.volume, safe=""))
    buffer = stats.get("buffer", {})
    checkpoint = volume.get("checkpoint", {})
    problems = [answer["error"] for answer in (stats, volume) if "error" in answer]
    return {
        "mountpoint": entry.mountpoint,
        "volume": entry.volume,
        "url": entry.url,
        "dirty_bytes": buffer.get("dirty_bytes"),
        "uploads_in_flight": buffer.get("uploads_in_flight"),
        "checkpoint_age_seconds": checkpoint.get("age_seconds"),
        "iclient_status": entry.iclient_status,
        "imgr_status": entry.imgr_status,
        "state": entry.state,
        "pid": entry.pid,
        "pids": entry.pids,
        "started": entry.started,
        "problems": problems,
    }


async def _ask(url: str) -> dict[str, Any]:
    """The JSON at `url`, or {"error": ...} saying why not."""
    try:
        return await trio.to_thread.run_sync(_get, url)
    except (OSError, ValueError) as exc:
        return {"error": f"{url}: {getattr(exc, 'reason', exc)}"}


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=ASK_SECONDS) as answer:
        return json.load(answer)


def table(rows: list[dict[str, Any]]) -> str:
    """For people: one line per mount, its dashboards and any problem under it."""
    head = ("MOUNTPOINT", "VOLUME", "DIRTY", "UPLOADS", "CHECKPOINT", "URL")
    lines = [head]
    for r in rows:
        age = r["checkpoint_age_seconds"]
        lines.append((
            r["mountpoint"], r["volume"], _size(r["dirty_bytes"]),
            "?" if r["uploads_in_flight"] is None else str(r["uploads_in_flight"]),
            "?" if age is None else f"{age:.0f} s ago", r["url"],
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    out = []
    for i, line in enumerate(lines):
        cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        out.append("  ".join([*cells, line[-1]]))
        if i:
            r = rows[i - 1]
            out.append(f"  dashboards: {r['iclient_status']} (mount), {r['imgr_status']} (imgr)")
            out += [f"  problem: {problem}" for problem in r["problems"]]
    return "\n".join(out)


def _size(nbytes: int | None) -> str:
    if nbytes is None:
        return "?"
    if nbytes < 1024:
        return f"{nbytes} B"
    value = nbytes / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
