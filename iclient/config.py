"""iclient's settings: flags, or a TOML file with the same keys (flags win).

imgr = "127.0.0.1:32356"      # the inode manager
volume = "vol"                # the volume to mount
token = "..."                 # mount token: a Swift token, an Azure SAS, or the secret
store = "swift://c?..."       # the volume's container, with this client's credentials
mountpoint = "/mnt/vol"
cache_dir = "/var/cache/objfs/vol"  # spill space for the write-back buffer
memory_mib = 256              # write-back buffer in memory; writers wait beyond it
disk_mib = 2048               # write-back buffer spilled to cache_dir
segment_mib = 32              # log segment (object) size
uploads = 4                   # segments uploading at once
read_cache_mib = 256          # stored blocks kept for reads
block_kib = 1024              # read block (ranged GET) size, a multiple of 64 (checksum block)
readahead = 8                 # blocks fetched ahead of a sequential reader, the kernel's too
page_cache_mib = 64           # decoded B+tree pages (directories, extent maps)
commit_interval = 5.0         # seconds a change may wait before it is committed
cache_seconds = 60.0          # kernel entry/attribute cache (leases invalidate it)
busy_poll_rate = 1000         # ops/s from which idle CPUs poll (iclient.wakeups); 0: never
http_address = "127.0.0.1"    # status pages and /metrics
http_port = 15347
options = ["noatime"]         # extra FUSE -o options

Every key is also a flag of `iclient run` (mountpoint is its argument,
options its repeatable -o) and every flag but --config a key, except
--token-file FILE, which reads `token` from a file (so that it is not on a
command line). Unknown keys and values of the wrong type or out of range are
refused with the key named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from iclient.api import DEFAULT_HTTP_PORT
from iclient.segments import BufferLimits
from imgr.api import DEFAULT_PORT
from layout.blocksums import BLOCK_SIZE
from objfs.settings import SettingsError, check_port, host_port
from objfs.storage.urls import redact

MIB = 1 << 20


@dataclass(frozen=True)
class Settings:
    imgr: str = f"127.0.0.1:{DEFAULT_PORT}"
    volume: str = ""
    token: str = ""
    store: str = ""
    mountpoint: str = ""
    cache_dir: str = ""
    memory_mib: int = 256
    disk_mib: int = 2048
    segment_mib: int = 32
    uploads: int = 4
    read_cache_mib: int = 256
    block_kib: int = 1024
    readahead: int = 8
    page_cache_mib: int = 64
    commit_interval: float = 5.0
    cache_seconds: float = 60.0
    busy_poll_rate: int = 1000
    http_address: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    options: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MountConfig:
    """Settings checked and in the units the mount uses."""

    settings: Settings
    imgr_host: str
    imgr_port: int
    limits: BufferLimits

    @classmethod
    def from_settings(cls, s: Settings) -> MountConfig:
        for key in ("volume", "store"):
            if not getattr(s, key):
                raise SettingsError(f"{key} is required")
        host, port = host_port("imgr", s.imgr)
        check_port("http_port", s.http_port)
        for key in ("disk_mib", "readahead", "page_cache_mib", "commit_interval", "cache_seconds",
                    "busy_poll_rate"):  # fmt: skip
            if getattr(s, key) < 0:
                raise SettingsError(f"{key} must not be negative")
        positive = ("memory_mib", "segment_mib", "uploads", "read_cache_mib", "block_kib")
        for key in positive:
            if getattr(s, key) <= 0:
                raise SettingsError(f"{key} must be above 0")
        if s.block_kib * 1024 % BLOCK_SIZE:
            raise SettingsError(f"block_kib must be a multiple of {BLOCK_SIZE // 1024}")
        if s.segment_mib * 2 > s.memory_mib:
            raise SettingsError("memory_mib must hold at least two segments (segment_mib)")
        limits = BufferLimits(s.segment_mib * MIB, s.memory_mib * MIB, s.disk_mib * MIB, s.uploads)
        return cls(s, host, port, limits)

    @property
    def cache_dir(self) -> Path | None:
        return Path(self.settings.cache_dir) if self.settings.cache_dir else None

    @property
    def block_bytes(self) -> int:
        return self.settings.block_kib * 1024

    @property
    def read_cache_bytes(self) -> int:
        return self.settings.read_cache_mib * MIB

    @property
    def page_cache_bytes(self) -> int:
        return self.settings.page_cache_mib * MIB

    def redacted(self) -> dict[str, object]:
        """For /config: every setting, without the token or credentials in the URL."""
        shown = dict(self.settings.__dict__)
        shown["token"] = "***" if self.settings.token else ""
        shown["store"] = redact(self.settings.store)
        return shown
