"""One config file format for ickpt, imgr run and iclient run: same keys as the flags, checked."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
from pathlib import Path
from typing import get_type_hints

import pytest

import ickpt.cli
import ickpt.config
import iclient.cli
import iclient.config
import imgr.cli
import imgr.config
from objfs.settings import SettingsError
from tests import daemons

# Flags that are no setting: the file itself, and --token-file, which reads `token` from a file.
NOT_KEYS = {"help", "version", "config", "token_file"}
# imgr's repeatable --volume NAME=URL adds to its [volumes.NAME] tables.
FLAG_KEYS = {"imgr": {"volume": "volumes"}}
# Flags not spelled --KEY: mount's own -o, and --volume (one volume per flag).
FLAG_NAMES = {"options": "-o", "volumes": "--volume"}


DAEMONS = {
    "ickpt": (ickpt.cli.parser(), ickpt.config.Config, ickpt.config.load),
    "imgr": (imgr.cli.parser(), imgr.config.Config, imgr.config.load),
    "iclient": (iclient.cli.parser(), iclient.config.Settings, iclient.cli.load),
}


def daemon_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser of the daemon's flags: the program's, or its `run` verb's."""
    verbs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return verbs[0].choices["run"] if verbs else parser


def argv(daemon: str, config: Path) -> list[str]:
    """The command line that loads `config` (iclient wants a mountpoint: the file's directory)."""
    verb = {"ickpt": [], "imgr": ["run"], "iclient": ["run", str(config.parent)]}[daemon]
    return [*verb, "--config", str(config)]


def run(daemon: str, config: Path) -> subprocess.CompletedProcess[str]:
    command = [daemons.command(daemon), *argv(daemon, config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def refused(daemon: str, config: Path, text: str) -> str:
    """The one line the daemon printed refusing `text` as its config file."""
    config.write_text(text)
    result = run(daemon, config)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{daemon}: "), result.stderr
    return lines[0]


# iclient checks values only once volume and store are set.
NEEDED = {"ickpt": "", "imgr": "", "iclient": 'volume = "v"\nstore = "file:///nonexistent"\n'}


@pytest.mark.parametrize("daemon", DAEMONS)
def test_an_unknown_key_is_named(tmp_path, daemon):
    line = refused(daemon, tmp_path / "c.toml", f'{NEEDED[daemon]}colour = "blue"\n')
    assert line.endswith(f"config file {tmp_path / 'c.toml'}: unknown key 'colour'")


@pytest.mark.parametrize(
    "daemon, text, message",
    [
        ("ickpt", 'port = "32357"', "port must be an integer"),
        ("imgr", 'owner_ttl = "long"', "owner_ttl must be a number"),
        ("iclient", "options = 5", "options must be a list of strings"),
        ("ickpt", "port = 70000", "port must be a port number (0-65535), not 70000"),
        ("imgr", "http_port = -1", "http_port must be a port number (0-65535), not -1"),
        ("iclient", "http_port = 65536", "http_port must be a port number (0-65535), not 65536"),
        ("imgr", 'ickpt = "nowhere"', "ickpt must be HOST:PORT, not 'nowhere'"),
        ("iclient", 'imgr = "h:99999"', "imgr must be a port number (0-65535), not 99999"),
        ("imgr", "checkpoint_interval = 0", "checkpoint_interval must be above 0"),
        ("iclient", "readahead = -1", "readahead must not be negative"),
        ("ickpt", 'tls_cert = "/c.pem"', "tls_cert and tls_key go together"),
        ("imgr", "[volumes.v]\nurl = 5", "volumes.v needs a url string"),
        ("imgr", '[volumes.v]\nurl = "file:///v"\nsecret = 5', "volumes.v.secret must be a string"),
        (
            "imgr",
            '[volumes.v]\nurl = "file:///v"\nsecrets = "s"',
            "volumes.v: unknown key 'secrets'",
        ),
        ("imgr", '[volumes."no/slash"]\nurl = "file:///v"', "volume name 'no/slash' must be"),
    ],
)
def test_a_bad_value_is_named(tmp_path, daemon, text, message):
    assert message in refused(daemon, tmp_path / "c.toml", f"{NEEDED[daemon]}{text}\n")


def wrong(hint: object) -> str:
    """A TOML value of another type than `hint`."""
    return "5" if hint is str else '"5"'


KEYS = [(d, f.name) for d, (_, cls, _) in DAEMONS.items() for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("daemon, key", [(d, k) for d, k in KEYS if k != "volumes"])
def test_every_key_is_type_checked(tmp_path, daemon, key):
    parser, cls, load = DAEMONS[daemon]
    config = tmp_path / "c.toml"
    config.write_text(f"{key} = {wrong(get_type_hints(cls)[key])}\n")
    with pytest.raises(SettingsError, match=f": {key} must be "):
        load(parser.parse_args(argv(daemon, config)))


@pytest.mark.parametrize("daemon", DAEMONS)
def test_every_flag_is_a_key_and_every_key_a_flag(daemon):
    parser, cls, _ = DAEMONS[daemon]
    parser = daemon_parser(parser)
    keys = {f.name for f in dataclasses.fields(cls)}
    renamed = FLAG_KEYS.get(daemon, {})
    flags = {renamed.get(a.dest, a.dest): a for a in parser._actions if a.dest not in NOT_KEYS}
    assert set(flags) == keys
    for key, action in flags.items():
        if action.option_strings:  # iclient's mountpoint is its argument
            spelled = FLAG_NAMES.get(key, f"--{key.replace('_', '-')}")
            assert spelled in action.option_strings


def test_the_file_and_the_flags_give_the_same_settings(tmp_path):
    """Each key means what its flag means (flags win over the file)."""
    config = tmp_path / "imgr.toml"
    config.write_text('lease_timeout = 3\ncache_mib = 8\n[volumes.a]\nurl = "file:///a"\n')
    parser, _, load = DAEMONS["imgr"]
    from_file = load(parser.parse_args(["run", "--config", str(config)]))
    flags = ["run", "--lease-timeout", "3", "--cache-mib", "8", "--volume", "a=file:///a"]
    from_flags = load(parser.parse_args(flags))
    assert from_file == from_flags
    both = load(parser.parse_args(["run", "--config", str(config), "--cache-mib", "9"]))
    assert both.cache_mib == 9 and both.lease_timeout == 3.0
