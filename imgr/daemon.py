"""The imgr daemon: many volumes, one RPC server, one status server.

`Imgr.run()` connects to ickpt, starts the RPC server (imgr.service) and the
status server (imgr.status), serves the configured volumes and runs until
cancelled; `stop()` first stops every volume cleanly (a last checkpoint, the
ownership given up). A volume that cannot be served is listed with its
reason and does not stop the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import trio

from ickpt.remote import RemoteStore
from ickpt.store import StoreError
from imgr import auth, status
from imgr.api import Fenced, NoVolume
from imgr.config import Config, ConfigError, check_volume_name
from imgr.ownership import VolumeBusy
from imgr.service import MethodStats, handlers
from imgr.view import StatusView
from imgr.volume import Timing, Volume
from layout.errors import LayoutError
from objfs.rpc import AlreadyExists, InvalidArgument, NotFound, RpcServer, RpcUnavailable
from objfs.status import serve_http
from objfs.storage import StorageError, open_store
from objfs.storage.urls import redact

log = logging.getLogger(__name__)


@dataclass
class _Served:
    volume: Volume
    scope: trio.CancelScope


class Imgr:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.timing = Timing(
            config.checkpoint_interval, config.lease_timeout, config.mount_ttl, config.owner_ttl
        )
        self.rpc_stats: dict[str, MethodStats] = {}
        self.server = RpcServer(handlers(self, self.rpc_stats), upcall_timeout=config.lease_timeout)
        self.ports: tuple[int, int] | None = None
        self._served: dict[str, _Served] = {}
        self._failed: dict[str, tuple[str, str]] = {}  # name -> (url, why)
        self._started = time.monotonic()
        self._ckpt: RemoteStore | None = None
        self._nursery: trio.Nursery | None = None

    async def run(
        self, *, task_status: trio.TaskStatus[tuple[int, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        config = self.config
        async with RemoteStore(*config.ickpt_address) as ckpt, trio.open_nursery() as nursery:
            self._ckpt, self._nursery = ckpt, nursery
            port = await nursery.start(self.server.serve, config.address, config.port)
            app = status.app(StatusView(self))
            http_port = await nursery.start(serve_http, app, config.http_address, config.http_port)
            self.ports = (port, http_port)
            for spec in config.volumes:
                try:
                    await self.serve_volume(spec.name, spec.url, spec.secret)
                except Exception as exc:  # reported per volume; the others go on
                    log.error("volume %s not served: %s", spec.name, exc)
            task_status.started(self.ports)

    async def stop(self) -> None:
        for name in list(self._served):
            await self.stop_volume(name)

    # ------------------------------------------------------------ volumes

    def volume(self, name: str) -> Volume:
        served = self._served.get(name)
        if served is None:
            raise NoVolume(f"volume {name!r:.70} is not served here")
        return served.volume

    async def serve_volume(self, name: str, url: str, secret: str | None = None) -> None:
        try:
            check_volume_name(name)
            checker = auth.authenticator(url, secret)
            store = open_store(url)
        except (ConfigError, ValueError) as exc:
            raise InvalidArgument(str(exc)) from None
        if name in self._served:
            raise AlreadyExists(f"volume {name} is served already")
        assert self._nursery is not None and self._ckpt is not None
        volume = Volume(
            name,
            url,
            store,
            self._ckpt,
            checker,
            me=self.config.id,
            timing=self.timing,
            cache_bytes=self.config.cache_mib << 20,
            sessions=self.server,
        )
        try:
            await self._nursery.start(self._run_volume, volume)
        except (VolumeBusy, Fenced, NotFound, LayoutError, StorageError, StoreError) as exc:
            self._failed[name] = (url, str(exc))
            raise RpcUnavailable(f"volume {name} not served: {exc}") from None
        self._failed.pop(name, None)
        log.info("serving volume %s from %s", name, redact(url))

    async def _run_volume(self, volume: Volume, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            with trio.CancelScope() as scope:
                await volume.serve(task_status=_Registering(self, volume, scope, task_status))
        finally:
            with trio.CancelScope(shield=True):
                await volume.store.aclose()

    async def stop_volume(self, name: str) -> None:
        served = self._served.get(name)
        if served is None:
            raise NoVolume(f"volume {name!r:.70} is not served here")
        try:
            await served.volume.stop()
        finally:
            served.scope.cancel()
            del self._served[name]
        log.info("stopped serving volume %s", name)

    def served(self) -> dict[str, Volume]:
        return {name: served.volume for name, served in self._served.items()}

    def listing(self) -> list[dict]:
        """Every volume with its (redacted) URL and state, for ListVolumes."""
        rows = [
            {"name": name, "url": redact(volume.url), "state": volume.state_name}
            for name, volume in self.served().items()
        ]
        for name, (url, why) in self._failed.items():
            rows.append({"name": name, "url": redact(url), "state": "failed", "reason": why})
        return rows

    def failed(self) -> dict[str, tuple[str, str]]:
        """Volumes that could not be served: name -> (url, why)."""
        return dict(self._failed)

    @property
    def uptime(self) -> float:
        return time.monotonic() - self._started


class _Registering:
    """task_status for Volume.serve that records the volume once it serves."""

    def __init__(
        self, imgr: Imgr, volume: Volume, scope: trio.CancelScope, outer: trio.TaskStatus[None]
    ) -> None:
        self.imgr, self.volume, self.scope, self.outer = imgr, volume, scope, outer

    def started(self, value: None = None) -> None:
        self.imgr._served[self.volume.name] = _Served(self.volume, self.scope)
        self.outer.started()
