"""Azurite blob service (npm azurite 3.37.0) with the well-known development account."""

from __future__ import annotations

import os
from pathlib import Path

from common import LOCALHOST, Kind, Options, ProcSpec, ServiceError, Waiter, answers_http

ACCOUNT = "devstoreaccount1"
# Azurite's published development key; it is public and identical on every installation.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
REPO = Path(__file__).resolve().parent.parent.parent
DEFAULT_BIN = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"


class Azurite(Kind):
    name = "azurite"
    port_names = ("blob",)
    start_timeout = 30.0

    def new_state(self, directory: Path, opts: Options) -> dict:
        return {"azurite_bin": str(Path(opts.azurite_bin or DEFAULT_BIN).absolute())}

    def prepare(self, directory: Path, state: dict, opts: Options) -> list[ProcSpec]:
        binary = Path(opts.azurite_bin or state["azurite_bin"]).absolute()
        if not os.access(binary, os.X_OK):
            raise ServiceError(
                f"azurite-blob not found at {binary} "
                "(npm install --prefix .tools azurite@3.37.0, or pass --azurite-bin)"
            )
        state["azurite_bin"] = str(binary)
        data = directory / "data"
        data.mkdir(exist_ok=True)
        argv = [
            str(binary),
            "--blobHost", LOCALHOST,
            "--blobPort", str(state["ports"]["blob"]),
            "--location", str(data),
            # Telemetry makes start and stop slow without network; the SDK's newer API
            # versions would be refused without --skipApiVersionCheck.
            "--disableTelemetry",
            "--silent",
            "--skipApiVersionCheck",
        ]  # fmt: skip
        return [ProcSpec("azurite", argv)]

    def wait_ready(self, state: dict, waiter: Waiter) -> None:
        port = state["ports"]["blob"]
        waiter.until(f"azurite HTTP on port {port}", lambda: answers_http(port))

    def info(self, state: dict) -> dict:
        endpoint = f"http://{LOCALHOST}:{state['ports']['blob']}/{ACCOUNT}"
        return {
            "kind": "azurite",
            "account_name": ACCOUNT,
            "account_key": ACCOUNT_KEY,
            "blob_endpoint": endpoint,
            "connection_string": (
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};"
                f"AccountKey={ACCOUNT_KEY};BlobEndpoint={endpoint};"
            ),
        }
