"""Mount tokens checked against real Swift and Azurite, and shared secrets."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import trio
from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas
from swiftclient.client import delete_container, get_auth

from imgr.auth import DEFAULT_TTL, authenticator
from objfs.rpc import PermissionDenied, RpcUnavailable
from objfs.storage import open_store
from objfs.storage.errors import ConfigError
from tests import services
from tests.storage.backends import azure_url, fresh_container, swift_url

# A SAS that lets a client work on its volume, and lets imgr's check list it.
MOUNT_PERMISSIONS = ContainerSasPermissions(
    read=True, add=True, create=True, write=True, delete=True, list=True
)
OTHER_KEY = "b3RoZXIga2V5IG9mIHRoZSByaWdodCBsZW5ndGggZm9yIGF6dXJpdGUgdGVzdHM="


async def swift_token(info: dict) -> str:
    _, token = await trio.to_thread.run_sync(
        lambda: get_auth(info["auth_url"], info["user"], info["key"], auth_version="1")
    )
    return token


async def make_container(url: str) -> None:
    store = open_store(url)
    try:
        await store.ensure_container()
    finally:
        await store.aclose()


async def drop_swift_container(info: dict, container: str) -> None:
    def drop() -> None:
        storage_url, token = get_auth(info["auth_url"], info["user"], info["key"])
        delete_container(storage_url, token, container)

    await trio.to_thread.run_sync(drop)


@pytest.fixture
async def swift_volume(swift_service):
    """The URL of a fresh Swift container, deleted after the test."""
    container = fresh_container()
    url = swift_url(swift_service, container)
    await make_container(url)
    yield url
    await drop_swift_container(swift_service, container)


def assert_refused_without_token(caught: pytest.ExceptionInfo, token: str, url: str) -> None:
    message = str(caught.value)
    assert token not in message
    assert url.split("?", 1)[0] in message
    assert "?" not in message and "\n" not in message


# -- Swift ----------------------------------------------------------------------


async def test_swift_token_of_the_account_is_accepted(swift_service, swift_volume):
    await authenticator(swift_volume).check(await swift_token(swift_service))


async def test_swift_token_with_storage_url_given(swift_service, swift_volume):
    """The storage URL from the volume URL: no login of imgr's own needed."""
    container = swift_volume.split("?", 1)[0].removeprefix("swift://")
    token = await swift_token(swift_service)
    url = swift_url(
        swift_service, container, storage_url=swift_service["storage_url"], token="imgr-own"
    )
    auth = authenticator(url)
    await auth.check(token)
    with pytest.raises(PermissionDenied):
        await auth.check("AUTH_tk" + uuid.uuid4().hex)


async def test_swift_wrong_token_is_refused(swift_volume):
    wrong = "AUTH_tk" + uuid.uuid4().hex
    with pytest.raises(PermissionDenied) as caught:
        await authenticator(swift_volume).check(wrong)
    assert_refused_without_token(caught, wrong, swift_volume)


async def test_swift_missing_container_is_refused(swift_service):
    url = swift_url(swift_service, fresh_container())
    token = await swift_token(swift_service)
    with pytest.raises(PermissionDenied, match="does not exist") as caught:
        await authenticator(url).check(token)
    assert_refused_without_token(caught, token, url)


async def test_swift_down_is_unavailable_not_refused(dedicated_service):
    info, directory = dedicated_service("swift")
    container = fresh_container()
    await make_container(swift_url(info, container))
    token = await swift_token(info)
    url = swift_url(info, container, storage_url=info["storage_url"], token=token)
    auth = authenticator(url)
    await trio.to_thread.run_sync(services.stop, "swift", directory)
    with pytest.raises(RpcUnavailable):
        await auth.check(token)


async def test_swift_accepted_token_is_cached_for_the_ttl(dedicated_service, mock_clock):
    info, directory = dedicated_service("swift")
    container = fresh_container()
    url = swift_url(info, container)
    await make_container(url)
    token = await swift_token(info)
    auth = authenticator(url)
    await auth.check(token)
    assert all(token.encode() not in repr(v).encode() for v in vars(auth).values())

    await trio.to_thread.run_sync(services.stop, "swift", directory)
    await auth.check(token)  # no request: Swift is down, and the answer is remembered
    with pytest.raises(RpcUnavailable):
        await auth.check(token + "x")  # another token is asked about, and cannot be
    mock_clock.jump(DEFAULT_TTL + 1)
    with pytest.raises(RpcUnavailable):
        await auth.check(token)  # expired: asked again


# -- Azure --------------------------------------------------------------------


@pytest.fixture
async def azure_containers(azurite_service):
    """make() -> the URL of a fresh Azurite container; all deleted after the test."""
    made: list[str] = []

    async def make(create: bool = True) -> tuple[str, str]:
        container = fresh_container()
        url = azure_url(azurite_service, container)
        if create:
            made.append(container)
            await make_container(url)
        return container, url

    yield make
    for container in made:
        client = ContainerClient.from_connection_string(
            azurite_service["connection_string"], container
        )
        with client:
            await trio.to_thread.run_sync(client.delete_container)


def sas(info: dict, container: str, key: str | None = None, expiry: timedelta = timedelta(hours=1)):
    now = datetime.now(UTC)
    return generate_container_sas(
        info["account_name"],
        container,
        account_key=key or info["account_key"],
        permission=MOUNT_PERMISSIONS,
        start=now - timedelta(hours=2),
        expiry=now + expiry,
    )


async def test_azure_sas_for_the_container_is_accepted(azurite_service, azure_containers):
    container, url = await azure_containers()
    token = sas(azurite_service, container)
    auth = authenticator(url)
    await auth.check(token)
    await auth.check("?" + sas(azurite_service, container, expiry=timedelta(hours=2)))


@pytest.mark.parametrize("kind", ["wrong key", "expired", "other container"])
async def test_azure_bad_sas_is_refused(azurite_service, azure_containers, kind):
    container, url = await azure_containers()
    other, _ = await azure_containers()
    token = {
        "wrong key": lambda: sas(azurite_service, container, key=OTHER_KEY),
        "expired": lambda: sas(azurite_service, container, expiry=-timedelta(minutes=5)),
        "other container": lambda: sas(azurite_service, other),
    }[kind]()
    with pytest.raises(PermissionDenied) as caught:
        await authenticator(url).check(token)
    assert_refused_without_token(caught, token, url)


async def test_azure_missing_container_refused_and_refusal_not_cached(
    azurite_service, azure_containers
):
    container, url = await azure_containers(create=False)
    token = sas(azurite_service, container)
    auth = authenticator(url)
    with pytest.raises(PermissionDenied, match="does not exist"):
        await auth.check(token)
    await make_container(url)
    try:
        await auth.check(token)
    finally:
        client = ContainerClient.from_connection_string(
            azurite_service["connection_string"], container
        )
        with client:
            await trio.to_thread.run_sync(client.delete_container)


async def test_azure_unreachable_is_unavailable(azurite_service):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the check: refuses connections
    container = fresh_container()
    url = azure_url(
        azurite_service,
        container,
        account_url=f"http://127.0.0.1:{port}/{azurite_service['account_name']}",
        account_key=azurite_service["account_key"],
    )
    with pytest.raises(RpcUnavailable):
        await authenticator(url).check(sas(azurite_service, container))


# -- Shared secrets ---------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["file", "mem"])
async def test_secret_volume(tmp_path, scheme):
    url = f"file://{tmp_path}/vol" if scheme == "file" else f"mem://{fresh_container()}"
    auth = authenticator(url, secret="right secret")
    await auth.check("right secret")
    for wrong in ("Right secret", "right secre", "right secret!", "x" * 10_000):
        with pytest.raises(PermissionDenied) as caught:
            await auth.check(wrong)
        assert_refused_without_token(caught, wrong, url)
    with pytest.raises(PermissionDenied):
        await auth.check("")


@pytest.mark.parametrize("secret", [None, ""])
def test_secret_volume_without_secret_is_a_config_error(tmp_path, secret):
    with pytest.raises(ConfigError) as caught:
        authenticator(f"file://{tmp_path}/vol", secret=secret)
    assert isinstance(caught.value, ValueError)
    assert "secret" in str(caught.value) and "\n" not in str(caught.value)
