"""A log segment being assembled: records appended into one future object.

Whoever writes a segment (imgr's checkpoints, iclient's flushes, the bulk
loader) appends framed records to it, gets back each record's Location,
seals it (which appends the digest table of layout.blocksums) and uploads
`data` once as object `number`. It is a `layout.btree.SegmentWriter`.
"""

from __future__ import annotations

from layout import blocksums
from layout.codec import Location


class Segment:
    """Bytes of object `number`, built by appending records."""

    def __init__(self, number: int) -> None:
        if number <= 0:
            raise ValueError(f"a segment is a numbered object above 0, got {number}")
        self.number = number
        self.sealed = False
        self._data = bytearray()

    def append(self, record: bytes) -> Location:
        self._check_open()
        location = Location(self.number, len(self._data), len(record))
        self._data += record
        return location

    def overwrite(self, offset: int, data: bytes) -> None:
        """Replace bytes appended earlier (data rewritten before the segment is stored)."""
        self._check_open()
        if offset < 0 or offset + len(data) > len(self._data):
            raise ValueError(f"overwrite of {offset}+{len(data)} past {len(self._data)} bytes")
        self._data[offset : offset + len(data)] = data

    def seal(self) -> None:
        """Append the digest table: the segment is complete, its bytes final."""
        self._check_open()
        self._data += blocksums.table(self._data)
        self.sealed = True

    def _check_open(self) -> None:
        if self.sealed:
            raise ValueError(f"segment {self.number} is sealed")

    @property
    def buffer(self) -> bytearray:
        """The live bytes, for readers of the unstored segment; never resize it."""
        return self._data

    def __len__(self) -> int:
        return len(self._data)

    @property
    def data(self) -> bytes:
        return bytes(self._data)
