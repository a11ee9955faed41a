"""The lease table of one volume: grants, interrupts, expulsion, fairness, promote, memory.

Every test takes pytest-trio's autojump_clock (a MockClock that jumps as soon as
every task is blocked), so lease timeouts cost no real time and a deadlock turns
into a TooSlowError at DEADLINE instead of a hang.
"""

from __future__ import annotations

import collections
import json
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from imgr.leases import LeaseRevoked, LeaseTable, Mode

NONE, SHARED, EXCLUSIVE = Mode.NONE, Mode.SHARED, Mode.EXCLUSIVE
TIMEOUT = 2.0
DEADLINE = 60.0


class Clients:
    """Fake mounts answering interrupts: at once, unless gated, late or failing."""

    def __init__(self):
        self.calls = []
        self.gates = {}
        self.late = set()
        self.failing = set()
        self.outstanding = collections.Counter()
        self.most_outstanding = 0

    def gate(self, mount):
        self.gates[mount] = trio.Event()

    def open(self, mount):
        self.gates.pop(mount).set()

    async def __call__(self, mount, inode, target):
        self.calls.append((mount, inode, target))
        self.outstanding[mount, inode] += 1
        self.most_outstanding = max(self.most_outstanding, self.outstanding[mount, inode])
        try:
            await trio.lowlevel.checkpoint()
            if mount in self.failing:
                raise ConnectionResetError("connection reset by peer")
            if mount in self.late:
                await trio.sleep(TIMEOUT * 10)
            if mount in self.gates:
                await self.gates[mount].wait()
        finally:
            self.outstanding[mount, inode] -= 1


@asynccontextmanager
async def running(clients):
    expelled = []
    table = LeaseTable(clients, lambda mount, reason: expelled.append((mount, reason)), TIMEOUT)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(table.run)
            yield table, expelled, nursery
            nursery.cancel_scope.cancel()


async def acquire(table, mount, inode, mode, results):
    results.append((mount, await table.acquire(mount, inode, mode)))


async def settle():
    await trio.testing.wait_all_tasks_blocked()


def assert_empty(table):
    assert table._holders == {}
    assert table._by_mount == {}
    assert table._waiters == {}
    assert table._interrupting == set()
    assert table.snapshot() == []


async def test_shared_requests_share(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, _nursery):
        assert await table.acquire("a", 7, SHARED) is SHARED
        assert await table.acquire("b", 7, SHARED) is SHARED
        assert table.holders(7) == {"a": SHARED, "b": SHARED}
    assert clients.calls == []
    assert table.grants == 2


async def test_exclusive_interrupts_every_shared_holder_to_none(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, _nursery):
        await table.acquire("a", 7, SHARED)
        await table.acquire("b", 7, SHARED)
        assert await table.acquire("c", 7, EXCLUSIVE) is EXCLUSIVE
        assert table.holders(7) == {"c": EXCLUSIVE}
        assert table.holds_exclusive("c", 7)
    assert sorted(clients.calls) == [("a", 7, NONE), ("b", 7, NONE)]
    assert (table.interrupts_sent, table.interrupts_answered) == (2, 2)


async def test_shared_request_demotes_exclusive_holder_to_shared(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, _nursery):
        await table.acquire("a", 7, EXCLUSIVE)
        assert await table.acquire("b", 7, SHARED) is SHARED
        assert table.holders(7) == {"a": SHARED, "b": SHARED}
    assert clients.calls == [("a", 7, SHARED)]


async def test_holder_answering_too_late_is_expelled_once_with_all_its_leases(autojump_clock):
    clients = Clients()
    clients.late.add("a")
    async with running(clients) as (table, expelled, nursery):
        await table.acquire("a", 7, EXCLUSIVE)
        await table.acquire("a", 8, EXCLUSIVE)
        await table.acquire("a", 9, SHARED)
        start = trio.current_time()
        results = []
        async with trio.open_nursery() as waiters:
            waiters.start_soon(acquire, table, "b", 7, SHARED, results)
            waiters.start_soon(acquire, table, "c", 8, EXCLUSIVE, results)
            await settle()
            assert results == []
            assert trio.current_time() < start + TIMEOUT / 2
        assert trio.current_time() == pytest.approx(start + TIMEOUT)
        assert sorted(results) == [("b", SHARED), ("c", EXCLUSIVE)]
        assert table.mode("a", 9) is NONE
        assert table.holders(7) == {"b": SHARED}
    [(mount, reason)] = expelled
    assert mount == "a"
    assert f"within {TIMEOUT}s" in reason and "inode" in reason and "\n" not in reason
    assert table.expulsions == 1


async def test_interrupt_that_raises_expels_the_holder(autojump_clock):
    clients = Clients()
    clients.failing.add("a")
    async with running(clients) as (table, expelled, _nursery):
        start = trio.current_time()
        await table.acquire("a", 7, SHARED)
        await table.acquire("a", 8, EXCLUSIVE)
        assert await table.acquire("b", 7, EXCLUSIVE) is EXCLUSIVE
        assert table.mode("a", 8) is NONE
        assert trio.current_time() < start + TIMEOUT / 2
    [(mount, reason)] = expelled
    assert mount == "a" and "ConnectionResetError" in reason and "inode 7" in reason


async def test_requests_are_served_in_arrival_order(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        await table.acquire("a", 7, SHARED)
        clients.gate("a")
        results = []
        nursery.start_soon(acquire, table, "b", 7, EXCLUSIVE, results)
        await settle()
        # c fits with a's shared lease, but b came first.
        nursery.start_soon(acquire, table, "c", 7, SHARED, results)
        await settle()
        assert results == []
        assert table.holders(7) == {"a": SHARED}
        clients.open("a")
        await settle()
        assert results == [("b", EXCLUSIVE), ("c", SHARED)]
        assert table.holders(7) == {"b": SHARED, "c": SHARED}


async def test_holder_asking_while_its_lease_is_interrupted_gets_a_new_grant(autojump_clock):
    """The holder's request may have crossed its own answer to the interrupt: the lease it
    gave up must not answer it, or the holder would change an inode it no longer holds."""
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        await table.acquire("a", 7, EXCLUSIVE)
        clients.gate("a")
        results = []
        nursery.start_soon(acquire, table, "b", 7, SHARED, results)
        await settle()
        nursery.start_soon(acquire, table, "a", 7, EXCLUSIVE, results)
        await settle()
        assert results == []  # not the exclusive lease being taken down
        clients.open("a")
        await settle()
        assert results == [("b", SHARED), ("a", EXCLUSIVE)]
        assert table.holders(7) == {"a": EXCLUSIVE}
        assert clients.calls == [("a", 7, SHARED), ("b", 7, NONE)]


async def test_two_promoters_both_get_exclusive_in_turn_without_deadlock(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        await table.acquire("a", 7, SHARED)
        await table.acquire("b", 7, SHARED)
        seen = []

        async def promote(mount):
            assert await table.acquire(mount, 7, EXCLUSIVE) is EXCLUSIVE
            seen.append(table.holders(7))
            table.release(mount, 7)

        nursery.start_soon(promote, "a")
        nursery.start_soon(promote, "b")
        await settle()
        assert sorted(seen, key=str) == [{"a": EXCLUSIVE}, {"b": EXCLUSIVE}]
        assert ("a", 7, NONE) in clients.calls and ("b", 7, NONE) in clients.calls
    assert_empty(table)


async def test_answer_to_an_interrupt_sent_before_a_new_grant_leaves_that_grant(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        await table.acquire("a", 7, SHARED)
        await table.acquire("b", 7, SHARED)
        clients.gate("a")
        clients.gate("b")
        results = []
        nursery.start_soon(acquire, table, "a", 7, EXCLUSIVE, results)
        await settle()
        nursery.start_soon(acquire, table, "b", 7, EXCLUSIVE, results)
        await settle()
        assert sorted(clients.calls) == [("a", 7, NONE), ("b", 7, NONE)]
        clients.open("b")
        await settle()
        # b answered: it lost its shared lease, and its promote waits on as an exclusive request.
        assert results == [("a", EXCLUSIVE)]
        assert table.holders(7) == {"a": EXCLUSIVE}
        # a's answer now concerns the shared lease it had, not the exclusive one it was told of.
        clients.open("a")
        clients.gate("a")
        await settle()
        assert table.holders(7) == {"a": EXCLUSIVE}
        assert clients.calls[-1] == ("a", 7, NONE)
        clients.open("a")
        await settle()
        assert results == [("a", EXCLUSIVE), ("b", EXCLUSIVE)]
        assert table.holders(7) == {"b": EXCLUSIVE}


async def test_holder_demoting_by_itself_unblocks_and_outlives_its_interrupt(autojump_clock):
    clients = Clients()
    clients.late.add("a")
    async with running(clients) as (table, expelled, nursery):
        await table.acquire("a", 7, EXCLUSIVE)
        results = []
        nursery.start_soon(acquire, table, "b", 7, SHARED, results)
        await settle()
        assert table.demote("a", 7) is SHARED
        await settle()
        assert results == [("b", SHARED)]
        await trio.sleep(TIMEOUT * 2)
        assert table.holders(7) == {"a": SHARED, "b": SHARED}
    assert expelled == []


async def test_release_all_fails_the_mounts_waiting_acquires(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        await table.acquire("a", 7, EXCLUSIVE)
        await table.acquire("b", 9, SHARED)
        clients.gate("a")
        failed = []

        async def doomed():
            with pytest.raises(LeaseRevoked) as caught:
                await table.acquire("b", 7, SHARED)
            failed.append(str(caught.value))

        nursery.start_soon(doomed)
        await settle()
        table.release_all("b")
        await settle()
        [message] = failed
        assert "mount b" in message and "inode 7" in message
        assert table.mode("b", 9) is NONE
        clients.open("a")
        await settle()
        table.release("a", 7)
    assert_empty(table)


async def test_cancelled_waiter_leaves_no_trace_and_lets_the_next_one_in(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        await table.acquire("a", 7, SHARED)
        clients.gate("a")
        results = []
        cancel_b = trio.CancelScope()

        async def cancellable():
            with cancel_b:
                await acquire(table, "b", 7, EXCLUSIVE, results)

        nursery.start_soon(cancellable)
        await settle()
        nursery.start_soon(acquire, table, "c", 7, SHARED, results)
        await settle()
        assert results == []
        cancel_b.cancel()
        await settle()
        assert results == [("c", SHARED)]
        assert table._waiters == {}
        clients.open("a")
        await settle()
        table.release("c", 7)
    assert_empty(table)


async def test_one_interrupt_at_a_time_per_lease_then_a_stronger_one(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        await table.acquire("a", 7, EXCLUSIVE)
        clients.gate("a")
        results = []
        nursery.start_soon(acquire, table, "b", 7, SHARED, results)
        await settle()
        nursery.start_soon(acquire, table, "c", 7, SHARED, results)
        await settle()
        nursery.start_soon(acquire, table, "d", 7, EXCLUSIVE, results)
        await settle()
        assert clients.calls == [("a", 7, SHARED)]
        clients.open("a")
        await settle()
        assert [call for call in clients.calls if call[0] == "a"] == [
            ("a", 7, SHARED),
            ("a", 7, NONE),
        ]
        assert sorted(results[:2]) == [("b", SHARED), ("c", SHARED)]
        assert results[2:] == [("d", EXCLUSIVE)]
    assert clients.most_outstanding == 1


async def test_table_keeps_nothing_once_everything_is_released(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        for inode in range(1000):
            await table.acquire("a", inode, EXCLUSIVE if inode % 2 else SHARED)
            await table.acquire("b", inode, SHARED)
        async with trio.open_nursery() as contenders:
            for inode in range(0, 1000, 10):
                contenders.start_soon(acquire, table, "c", inode, EXCLUSIVE, [])
        for inode in range(1000):
            table.release("a", inode)
            table.release("b", inode)
        table.release_all("c")
        assert table._holders == {}
        nursery.start_soon(acquire, table, "d", 3, EXCLUSIVE, [])
        await settle()
        table.release_all("d")
    assert_empty(table)


async def test_stopping_the_table_fails_waiters(autojump_clock):
    clients = Clients()
    clients.gate("a")
    table = LeaseTable(clients, lambda mount, reason: None, TIMEOUT)
    table_scope = trio.CancelScope()
    failed = []

    async def run_table(task_status=trio.TASK_STATUS_IGNORED):
        with table_scope:
            await table.run(task_status=task_status)

    async def waiter():
        with pytest.raises(LeaseRevoked, match="stopped"):
            await table.acquire("b", 7, SHARED)
        failed.append("b")

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_table)
            await table.acquire("a", 7, EXCLUSIVE)
            nursery.start_soon(waiter)
            await settle()
            table_scope.cancel()
    assert failed == ["b"]
    assert table._waiters == {}


async def test_snapshot_lists_holders_and_waiters_as_json(autojump_clock):
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        await table.acquire("a", 7, EXCLUSIVE)
        clients.gate("a")
        nursery.start_soon(acquire, table, "b", 7, SHARED, [])
        await settle()
        assert json.loads(json.dumps(table.snapshot())) == [
            {"inode": 7, "mount": "a", "mode": "exclusive", "waiting": False},
            {"inode": 7, "mount": "b", "mode": "shared", "waiting": True},
        ]
        clients.open("a")


async def test_weaker_request_granted_after_a_stronger_one_keeps_the_stronger_lease(
    autojump_clock,
):
    clients = Clients()
    async with running(clients) as (table, _expelled, nursery):
        await table.acquire("a", 7, EXCLUSIVE)
        clients.gate("a")
        results = []
        nursery.start_soon(acquire, table, "b", 7, EXCLUSIVE, results)
        await settle()
        nursery.start_soon(acquire, table, "b", 7, SHARED, results)
        await settle()
        clients.open("a")
        await settle()
        assert results == [("b", EXCLUSIVE), ("b", EXCLUSIVE)]
        assert table.holders(7) == {"b": EXCLUSIVE}
