"""SQLite in WAL mode on the mount, with several processes writing the same database at once."""

from __future__ import annotations

import json
import os
import random
import select
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.programs.helpers import run

WRITERS = 4
ROWS_PER_WRITER = 500
ROWS_PER_TRANSACTION = 5
DEADLINE = 300

# Payloads of a few KiB push the WAL past its 1000-page auto-checkpoint more than
# once, so checkpoints copy pages into the database while other processes write.
PAYLOAD_SIZES = (500, 6000)


def payload(writer: int, seq: int) -> bytes:
    rng = random.Random(writer * 1_000_003 + seq)
    return rng.randbytes(rng.randint(*PAYLOAD_SIZES))


# Runs in a child process; the functions above are imported from this module so
# the parent and the children agree on what each row holds.
#
# The parent paces the writers in rounds: each round every writer gets one "go"
# line, commits one transaction, and answers with the row count it then sees.
# Within a round all four contend for the write lock at once; across rounds
# each writer must see the others' commits. Left alone, one writer would commit
# all its rows while the others sleep in SQLite's busy handler.
WORKER = """
import json, os, sqlite3, sys
from tests.programs.test_sqlite import ROWS_PER_TRANSACTION, ROWS_PER_WRITER, payload

db, writer = sys.argv[1], int(sys.argv[2])
# busy_timeout: writers queue on the WAL write lock instead of failing with SQLITE_BUSY.
conn = sqlite3.connect(db, timeout=120, isolation_level=None)
report = {"journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0]}
for first in range(0, ROWS_PER_WRITER, ROWS_PER_TRANSACTION):
    assert sys.stdin.readline() == "go\\n"
    # IMMEDIATE takes the write lock up front; a deferred transaction that reads
    # first gets SQLITE_BUSY_SNAPSHOT without waiting when another writer wins.
    conn.execute("BEGIN IMMEDIATE")
    for seq in range(first, first + ROWS_PER_TRANSACTION):
        conn.execute("INSERT INTO t (writer, seq, data) VALUES (?, ?, ?)",
                     (writer, seq, payload(writer, seq)))
    mine = conn.execute("SELECT count(*) FROM t WHERE writer = ?", (writer,)).fetchone()[0]
    assert mine == first + ROWS_PER_TRANSACTION, (mine, first)
    conn.execute("COMMIT")
    if first == 0:
        report["wal_seen"] = os.path.exists(db + "-wal")
        report["shm_seen"] = os.path.exists(db + "-shm")
    print(conn.execute("SELECT count(*) FROM t").fetchone()[0], flush=True)
conn.close()
print(json.dumps(report), flush=True)
"""


def _read_line(proc: subprocess.Popen, writer: int) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], DEADLINE)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"writer {writer} stopped answering (exit {proc.returncode}):\n{err}")
    return line


def test_wal_concurrent_writers(fsroot: Path):
    db = fsroot / "shared.db"
    wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
    conn = sqlite3.connect(db, isolation_level=None)
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL,"
        " seq INTEGER NOT NULL, data BLOB NOT NULL, UNIQUE (writer, seq))"
    )

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.fspath(repo)}
    procs = []
    try:
        for writer in range(WRITERS):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, os.fspath(db), str(writer)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        rounds = ROWS_PER_WRITER // ROWS_PER_TRANSACTION
        per_round = WRITERS * ROWS_PER_TRANSACTION
        for done in range(rounds):
            for proc in procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
            for writer, proc in enumerate(procs):
                seen = int(_read_line(proc, writer))
                # At least everything committed in earlier rounds plus its own rows.
                assert done * per_round + ROWS_PER_TRANSACTION <= seen <= (done + 1) * per_round
            total = conn.execute("SELECT count(*) FROM t").fetchone()[0]
            assert total == (done + 1) * per_round, f"round {done}: parent sees {total} rows"
        reports = []
        for writer, proc in enumerate(procs):
            reports.append(json.loads(_read_line(proc, writer)))
            _, err = proc.communicate(timeout=DEADLINE)
            assert proc.returncode == 0, f"writer {writer} exited {proc.returncode}:\n{err}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)

    for writer, report in enumerate(reports):
        assert report == {"journal_mode": "wal", "wal_seen": True, "shm_seen": True}, writer
    # This connection is still open, so SQLite has kept the WAL and its index.
    assert wal.exists() and shm.exists()

    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == WRITERS * ROWS_PER_WRITER
    for writer, seq, data in conn.execute("SELECT writer, seq, data FROM t"):
        assert data == payload(writer, seq), (writer, seq)
    counts = dict(conn.execute("SELECT writer, count(DISTINCT seq) FROM t GROUP BY writer"))
    assert counts == dict.fromkeys(range(WRITERS), ROWS_PER_WRITER)

    # The last connection to close checkpoints everything into the database file
    # and deletes the WAL, which needs the exclusive lock only it can take now.
    conn.close()
    assert not wal.exists()

    # A fresh process reads it all back from the database file alone.
    out = run(
        ["sqlite3", db, "PRAGMA integrity_check; PRAGMA journal_mode; SELECT count(*) FROM t;"],
        timeout=DEADLINE,
    ).stdout
    assert out.split() == ["ok", "wal", str(WRITERS * ROWS_PER_WRITER)]
