"""Whole-file reads and writes the POSIX tests share."""

from __future__ import annotations


def write_file(path, data=b""):
    with open(path, "wb") as f:
        f.write(data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()
