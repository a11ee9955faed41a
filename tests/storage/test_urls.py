"""Storage URLs: backends, credentials from URL, environment or file, and bad input."""

from __future__ import annotations

import pytest

from objfs.storage import ConfigError
from objfs.storage.localdir import LocalDirStore
from objfs.storage.mem import MemStore
from objfs.storage.urls import open_raw, parse


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch, tmp_path):
    for variable in (
        "ST_AUTH",
        "ST_USER",
        "ST_KEY",
        "OS_STORAGE_URL",
        "OS_AUTH_TOKEN",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_ACCOUNT_URL",
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OBJFS_CREDENTIALS", str(tmp_path / "absent.toml"))


def test_local_backends(tmp_path):
    assert isinstance(open_raw(f"file://{tmp_path}/c"), LocalDirStore)
    assert open_raw(f"file://{tmp_path}/c").root == f"{tmp_path}/c"
    assert isinstance(open_raw("mem://x"), MemStore)


def test_credentials_in_the_url_win():
    scheme, container, params = parse("swift://box?auth_url=http%3A//h/auth/v1.0&user=u&key=k")
    assert (scheme, container) == ("swift", "box")
    assert params == {"auth_url": "http://h/auth/v1.0", "user": "u", "key": "k"}


def test_credentials_from_environment_then_file(monkeypatch, tmp_path):
    config = tmp_path / "credentials.toml"
    config.write_text('[azure]\naccount_url = "http://file"\nsas_token = "from-file"\n')
    monkeypatch.setenv("OBJFS_CREDENTIALS", str(config))
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", "http://env")
    _, _, params = parse("azure://box")
    assert params == {"account_url": "http://env", "sas_token": "from-file"}
    _, _, params = parse("azure://box?sas_token=from-url")
    assert params["sas_token"] == "from-url"


@pytest.mark.parametrize(
    "url,message",
    [
        ("s3://bucket", "unknown storage URL scheme 's3'"),
        ("swift://", "names one container"),
        ("swift://box/extra", "names one container"),
        ("swift://box?password=x", "unknown parameter 'password'"),
        ("azure://box?timeout=soon", "timeout must be a float"),
    ],
)
def test_bad_urls_are_one_line_errors(url, message):
    with pytest.raises(ConfigError) as caught:
        open_raw(url)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_secrets_never_appear_in_errors_or_urls():
    with pytest.raises(ConfigError) as caught:
        open_raw("swift://box?key=hunter2&bogus=1")
    assert "hunter2" not in str(caught.value)


def test_broken_credentials_file_is_named(monkeypatch, tmp_path):
    config = tmp_path / "credentials.toml"
    config.write_text("[swift\n")
    monkeypatch.setenv("OBJFS_CREDENTIALS", str(config))
    with pytest.raises(ConfigError, match="credentials.toml"):
        parse("swift://box")
