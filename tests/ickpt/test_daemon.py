"""The ickpt program itself: flags, config file, TLS, signals, bad input."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from ickpt.remote import RemoteStore
from tests.ickpt.conftest import start_daemon, stop_daemon

ICKPT = str(Path(sys.executable).parent / "ickpt")


def run_ickpt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ICKPT, *args], capture_output=True, text=True, timeout=30)


def test_version_and_help():
    assert run_ickpt("--version").stdout.startswith("ickpt ")
    assert "--store" in run_ickpt("--help").stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_is_a_clean_shutdown(tmp_path, sig):
    daemon = start_daemon("--store", f"file://{tmp_path / 'ckpt.log'}")
    assert stop_daemon(daemon.proc, sig) == 0


async def test_tls_from_a_config_file(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    config = tmp_path / "ickpt.toml"
    config.write_text(
        f'store = "file://{tmp_path / "ckpt.log"}"\n'
        f'tls_cert = "{tmp_path / "server.pem"}"\n'
        f'tls_key = "{tmp_path / "server.pem"}"\n'
    )
    daemon = start_daemon("--config", str(config))
    try:
        client_tls = ssl.create_default_context()
        ca.configure_trust(client_tls)
        async with RemoteStore("127.0.0.1", daemon.port, ssl_context=client_tls) as store:
            assert await store.put("over-tls", b"secret", 0) > 0
            assert (await store.get("over-tls"))[1] == b"secret"
    finally:
        stop_daemon(daemon.proc)


@pytest.mark.parametrize(
    "config,args,message",
    [
        ('colour = "blue"\n', (), "unknown key 'colour'"),
        ('port = "32357"\n', (), "port must be an integer"),
        ("", ("--store", "s3://bucket"), "store must be file://PATH or etcd://"),
        ("", ("--tls-cert", "/nonexistent.pem"), "tls_cert and tls_key go together"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, config, args, message):
    path = tmp_path / "ickpt.toml"
    path.write_text(config)
    result = run_ickpt("--config", str(path), "--port", "0", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_corrupt_log_refuses_to_start_with_one_line(tmp_path):
    log = tmp_path / "ckpt.log"
    log.write_bytes(b"not an ickpt log at all" * 10)
    result = run_ickpt("--port", "0", "--store", f"file://{log}")
    assert result.returncode == 2
    assert str(log) in result.stderr
