"""azure_order.Lister turns a UTF-16-ordered listing into UTF-8 order, from any name."""

from __future__ import annotations

import bisect
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from objfs.storage import azure_order
from objfs.storage.azure_order import Lister

# Characters on both sides of every boundary where UTF-16 and UTF-8 order disagree.
ALPHABET = ["a", "b", "\ud7ff", "\ue000", "\uff21", "\ufffd", "\U00010000", "\U0001f600"]
names = st.text(alphabet=st.sampled_from(ALPHABET), min_size=1, max_size=4)


def utf16(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def fake_service(stored: set[str], honour_start: bool):
    """fetch(prefix, start, per_page) as Azure answers it: UTF-16 order, startFrom inclusive."""
    ordered = sorted(stored, key=utf16)
    keys = [utf16(n) for n in ordered]

    def fetch(prefix: str, start: str, per_page: int):
        first = bisect.bisect_left(keys, utf16(start)) if honour_start else 0
        for name in ordered[first:]:
            if name.startswith(prefix):
                yield SimpleNamespace(name=name)

    return fetch


@settings(max_examples=400, deadline=None)
@given(
    stored=st.sets(names, max_size=40),
    prefix=st.sampled_from(["", "a", "\ue000", "\U0001f600"]),
    start_after=st.none() | names,
    honour_start=st.booleans(),
    sort_in_memory=st.sampled_from([2, 3, 1000]),
)
def test_lister_yields_utf8_order_after_any_name(
    stored, prefix, start_after, honour_start, sort_in_memory, monkeypatch_module
):
    monkeypatch_module.setattr(azure_order, "SORT_IN_MEMORY", sort_in_memory)
    lister = Lister(fake_service(stored, honour_start), per_page=3)
    got = [item.name for item in lister.after(prefix, start_after)]
    expected = sorted((n for n in stored if n.startswith(prefix)), key=lambda n: n.encode())
    if start_after is not None:
        expected = [n for n in expected if n.encode() > start_after.encode()]
    assert got == expected
