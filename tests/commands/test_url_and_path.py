"""URL[:/PATH] as `objfs watch` and `objfs verify` take it: the path never eats a URL's colons."""

from __future__ import annotations

import pytest

from objfs.commands.common import url_and_path

SWIFT = "swift://c?auth_url=http://127.0.0.1:8080/auth/v1.0&user=test:tester&key=testing"
AZURE = "azure://c?account_url=http://h:1/a&sas_token=s"


@pytest.mark.parametrize(
    ("text", "url", "path"),
    [
        ("file:///srv/store", "file:///srv/store", ""),
        ("file:///srv/store:/photos/2026", "file:///srv/store", "/photos/2026"),
        (SWIFT, SWIFT, ""),
        (SWIFT + ":/in", SWIFT, "/in"),
        (AZURE + ":/x", AZURE, "/x"),
    ],
)  # fmt: skip
def test_url_and_path(text: str, url: str, path: str) -> None:
    assert url_and_path(text) == (url, path)
