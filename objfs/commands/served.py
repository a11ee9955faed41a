"""Reaching a served volume through its imgr, as iclient's library: `load --into` and `watch`.

A volume that a running objfs stack serves (`objfs up`, `objfs mount`) is
found in the registry of running stacks, which gives imgr's address and the
state dir whose private iclient config holds the mount token. Elsewhere
(docker-compose, a shared imgr) --imgr and --token-file say it.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from iclient.config import MountConfig, Settings
from objfs import runtime
from objfs.cli import CommandError
from objfs.settings import SettingsError
from objfs.storage.urls import redact


def add_served_args(parser: argparse.ArgumentParser) -> None:
    imgr = "the imgr serving the volume (default: that of a running objfs stack of URL)"
    parser.add_argument("--imgr", metavar="HOST:PORT", help=imgr)
    token = "with --imgr: a file holding the volume's mount token"
    parser.add_argument("--token-file", metavar="FILE", type=Path, help=token)


def served_volume(url: str, volume: str, imgr: str | None, token_file: Path | None) -> MountConfig:
    """How to open the volume at `url` through imgr (iclient.mount.Mount.open)."""
    if imgr:
        if token_file is None:
            raise CommandError("--imgr needs --token-file")
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise CommandError(f"--token-file {token_file}: {exc.strerror}") from None
    else:
        where = redact(url)
        entry = next((e for e in runtime.running() if e.url == where and e.imgr), None)
        if entry is None:
            raise CommandError(
                f"no running objfs stack serves {where}; start one (objfs up or objfs mount), "
                "or give --imgr and --token-file"
            )
        with open(Path(entry.state) / "run" / "iclient.toml", "rb") as config:
            imgr, token, volume = entry.imgr, tomllib.load(config)["token"], entry.volume
    settings = Settings(imgr=imgr, volume=volume, token=token, store=url)
    try:
        return MountConfig.from_settings(settings)
    except SettingsError as exc:
        raise CommandError(f"--imgr {imgr}: {exc}") from None
