"""`objfs watch` settings: flags, or the `[watch]` table of a daemons' config file."""

from __future__ import annotations

from dataclasses import dataclass

from objfs.settings import SettingsError, check_port

DEFAULT_HTTP_PORT = 15348


@dataclass(frozen=True)
class WatchSettings:
    source: str = ""  # the local directory
    target: str = ""  # URL[:/PATH]
    delete: bool = False
    settle: float = 2.0
    jobs: int = 8
    state: str = ".objfs/watch"
    http_address: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    imgr: str = ""
    token_file: str = ""
    retry_max: float = 300.0

    def check(self) -> None:
        for key in ("source", "target"):
            if not getattr(self, key):
                raise SettingsError(f"{key} is required")
        if self.settle < 0 or self.retry_max <= 0:
            raise SettingsError("settle must not be negative, retry_max must be above 0")
        if self.jobs < 1:
            raise SettingsError(f"jobs must be at least 1, not {self.jobs}")
        check_port("http_port", self.http_port)
