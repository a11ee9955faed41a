"""The accounting that decides when an object may be deleted, and the nonce ceilings."""

from __future__ import annotations

import pytest

from imgr.accounts import AccountingError, Accounts
from imgr.nonces import RESERVE, Nonces


def test_object_becomes_garbage_only_when_its_last_bytes_go():
    accounts = Accounts()
    accounts.apply({7: 300}, {7: 300}, {})
    accounts.apply({}, {}, {7: 100})
    assert accounts.referenced == {7: 200} and not accounts.garbage
    accounts.apply({}, {}, {7: 200})
    assert accounts.garbage == {7} and 7 not in accounts.referenced


def test_garbage_is_deleted_only_after_the_next_checkpoint_lists_it():
    accounts = Accounts()
    accounts.apply({5: 10}, {5: 10}, {})
    accounts.snapshot(6, 0, {})  # checkpoint 1 in object 6 still needs object 5
    accounts.apply({}, {}, {5: 10})
    assert accounts.garbage == {5} and 5 not in accounts.deleting
    deleting = accounts.snapshot(8, 0, {})  # checkpoint 2 no longer needs it
    assert 5 in deleting and not accounts.garbage
    accounts.forget(5)
    assert 5 not in accounts.deleting and accounts.deleted == 1


def test_the_replaced_superblock_goes_straight_to_deleting():
    accounts = Accounts()
    accounts.snapshot(3, 0, {})
    assert accounts.pinned == 3 and not accounts.deleting
    assert accounts.snapshot(4, 0, {}) == (3,)
    assert accounts.pinned == 4


def test_a_superblock_object_with_live_pages_is_kept():
    accounts = Accounts()
    accounts.snapshot(3, 500, {})
    assert accounts.snapshot(4, 0, {}) == ()
    assert accounts.referenced == {3: 500}


def test_releasing_more_than_referenced_is_refused():
    accounts = Accounts()
    accounts.apply({9: 50}, {9: 50}, {})
    with pytest.raises(AccountingError, match="only 50 referenced"):
        accounts.check({}, {}, {9: 51})
    accounts.check({}, {9: 1}, {9: 51})  # the same batch may add bytes first


def test_an_object_reported_written_twice_is_refused():
    accounts = Accounts()
    accounts.apply({9: 50}, {9: 50}, {})
    with pytest.raises(AccountingError, match="written twice"):
        accounts.check({9: 50}, {}, {})


def test_nonces_wait_for_a_durable_ceiling():
    nonces = Nonces(cursor=10, durable=10)
    assert nonces.take(5) is None and nonces.needs_checkpoint
    ceiling = nonces.ceiling()
    assert ceiling >= 15 + RESERVE
    nonces.made_durable(ceiling)
    assert nonces.take(5) == 10 and nonces.take(5) == 15 and not nonces.needs_checkpoint


def test_checkpoint_objects_above_the_ceiling_may_be_overwritten():
    nonces = Nonces(cursor=10, durable=10)
    assert nonces.take_for_checkpoint() == (10, True)
    nonces.made_durable(nonces.ceiling())
    assert nonces.take_for_checkpoint() == (11, False)
