"""The one error every decoder of layout/ raises for bytes it cannot trust."""

from __future__ import annotations


class LayoutError(ValueError):
    """Bytes that are not a valid record: truncated, garbled, wrong type or version.

    `where` names what was being decoded (e.g. "inode head in object 00a1..
    at 4096"), so the mount can log exactly which object and offset is bad.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{message} ({where})" if where else message)
