"""Every documented way to authenticate, against the real Swift and Azurite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from swiftclient.client import get_auth

from objfs.storage import AlreadyExists, AuthError, open_store
from objfs.storage.api import Payload
from objfs.storage.swift import SwiftStore

from .backends import TEST_POLICY, azure_url, fresh_container, swift_url


async def roundtrip(url: str) -> None:
    async with open_store(url, TEST_POLICY) as store:
        await store.ensure_container()
        await store.put("hello", b"world")
        assert await store.get("hello") == b"world"
        assert [info.name async for info in store.list()] == ["hello"]


async def test_swift_tempauth(swift_service):
    await roundtrip(swift_url(swift_service, fresh_container()))


def swift_token(info: dict) -> tuple[str, str]:
    return get_auth(info["auth_url"], info["user"], info["key"])


async def test_swift_pre_issued_token(swift_service):
    storage_url, token = swift_token(swift_service)
    await roundtrip(swift_url({}, fresh_container(), storage_url=storage_url, token=token))


async def test_swift_refused_token_is_an_auth_error(swift_service):
    storage_url, _ = swift_token(swift_service)
    url = swift_url({}, fresh_container(), storage_url=storage_url, token="AUTH_tk-not-a-token")
    async with open_store(url, TEST_POLICY) as store:
        with pytest.raises(AuthError):
            await store.put("x", b"1")
        assert store.retries == 0


def sas(info: dict, container: str, **permissions: bool) -> str:
    return generate_container_sas(
        account_name=info["account_name"],
        container_name=container,
        account_key=info["account_key"],
        permission=ContainerSasPermissions(**permissions),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


async def test_azure_connection_string(azurite_service):
    await roundtrip(azure_url(azurite_service, fresh_container()))


async def test_azure_account_key(azurite_service):
    info = azurite_service
    url = azure_url(
        info, fresh_container(), account_url=info["blob_endpoint"], account_key=info["account_key"]
    )
    await roundtrip(url)


async def test_azure_container_sas_alone(azurite_service):
    info = azurite_service
    container = fresh_container()
    async with open_store(azure_url(info, container), TEST_POLICY) as owner:
        await owner.ensure_container()
    token = sas(info, container, read=True, write=True, create=True, list=True, delete=True)
    await roundtrip(azure_url(info, container, account_url=info["blob_endpoint"], sas_token=token))


async def test_azure_read_only_sas_cannot_write(azurite_service):
    info = azurite_service
    container = fresh_container()
    async with open_store(azure_url(info, container), TEST_POLICY) as owner:
        await owner.ensure_container()
        await owner.put("existing", b"data")
    token = sas(info, container, read=True, list=True)
    url = azure_url(info, container, account_url=info["blob_endpoint"], sas_token=token)
    async with open_store(url, TEST_POLICY) as reader:
        assert await reader.get("existing") == b"data"
        with pytest.raises(AuthError) as caught:
            await reader.put("new", b"x")
        assert caught.value.name == "new"
        with pytest.raises(AuthError):
            await reader.delete("existing")
        assert reader.retries == 0


class FailingPayload(Payload):
    """Sends half of its bytes, then fails the way a local read error would."""

    size = 4 << 20

    def chunks(self):
        yield b"x" * (self.size // 2)
        raise OSError("disk went away")


async def test_swift_failed_create_releases_its_claim(swift_service):
    """A create-if-absent whose upload failed leaves the name free for the next writer."""
    info = swift_service
    store = SwiftStore(
        fresh_container(), auth_url=info["auth_url"], user=info["user"], key=info["key"]
    )
    try:
        await store.ensure_container()
        with pytest.raises(Exception, match="disk went away"):
            await store.put("claimed", FailingPayload(), if_absent=True)
        await store.put("claimed", b"second writer", if_absent=True)
        assert await store.get("claimed") == b"second writer"
        with pytest.raises(AlreadyExists):
            await store.put("claimed", b"third writer", if_absent=True)
        await store.delete("claimed")
        await store.put("claimed", b"after delete", if_absent=True)
        assert await store.get("claimed") == b"after delete"
    finally:
        await store.aclose()
