"""Dockerfile and docker-compose.yml, checked without a Docker engine (none runs here).

`docker-compose config` validates the compose file and prints it resolved; the
Dockerfile is parsed for its stages. Then the containers' own programs (docker/) run
here for real, started with the commands the compose file gives them, on 127.0.0.1
instead of the compose network: the Swift all-in-one, ickpt, imgr formatting its volume
on first start, and iclient mounting it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from swiftclient.client import get_auth, head_container, put_container

from tests import daemons
from tests.mounts import mountpoint

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IMAGE_ROOT = "/opt/objfs/"  # the images keep the repository's layout under it
SERVICES = {"swift", "ickpt", "imgr", "iclient"}
CONSOLE_SCRIPTS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|[\w.+-]+-dev)\b")
READY_SECONDS = 120.0  # a busy 2-core machine, where 20 s is not always enough


# ---------------------------------------------------------------- docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict:
    """docker-compose.yml as `docker-compose config` resolves it."""
    argv = ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # PyYAML comes with docker-compose's own Python (Debian's python3-yaml), not the venv.
    to_json = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    converted = subprocess.run(
        ["/usr/bin/python3", "-c", to_json], input=result.stdout, capture_output=True, text=True
    )
    assert converted.returncode == 0, converted.stderr
    return json.loads(converted.stdout)


def command(service: dict) -> list[str]:
    return [*service.get("entrypoint", []), *service.get("command", [])]


def healthcheck(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", "a healthcheck runs a program, not a shell line"
    return test[1:]


def bind_mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("/"):
            mounts[target] = Path(source)
    return mounts


def host_path(service: dict, path: str) -> Path | None:
    """Where the repository holds a file a container names, or None if it holds none."""
    if path.startswith(IMAGE_ROOT):
        return ROOT / path.removeprefix(IMAGE_ROOT)
    return bind_mounts(service).get(path)


def service_config(service: dict) -> dict:
    """The TOML file the service's command passes with --config."""
    argv = command(service)
    path = host_path(service, argv[argv.index("--config") + 1])
    assert path is not None and path.is_file(), f"--config of {argv} is not in the repository"
    return tomllib.loads(path.read_text())


def test_compose_has_the_four_services_and_publishes_the_status_ports(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    published = {
        name: {(port["published"], port["target"]) for port in s.get("ports", [])}
        for name, s in services.items()
    }
    assert (15346, 15346) in published["imgr"]
    assert (15347, 15347) in published["iclient"]
    # Published ports reach only what listens on every address of the container.
    assert service_config(services["imgr"])["http_address"] == "0.0.0.0"
    assert service_config(services["iclient"])["http_address"] == "0.0.0.0"
    assert service_config(services["imgr"])["address"] == "0.0.0.0"
    ickpt = services["ickpt"]["command"]
    assert ickpt[ickpt.index("--address") + 1] == "0.0.0.0"


def test_compose_iclient_can_mount_fuse_at_mnt(compose):
    iclient = compose["services"]["iclient"]
    assert "/dev/fuse" in [device.split(":")[0] for device in iclient["devices"]]
    assert "SYS_ADMIN" in iclient["cap_add"]
    assert "apparmor:unconfined" in iclient["security_opt"]
    assert iclient.get("user") == "root"
    assert service_config(iclient)["mountpoint"] == "/mnt"


def test_compose_starts_in_order_on_health(compose):
    services = compose["services"]
    assert set(services["imgr"]["depends_on"]) == {"swift", "ickpt"}
    assert set(services["iclient"]["depends_on"]) == {"imgr"}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}).values():
            assert dependency["condition"] == "service_healthy", name
        assert healthcheck(service), name


def test_compose_runs_only_programs_that_exist(compose):
    dockerfile = Dockerfile.parse()
    for name, service in compose["services"].items():
        stage = service["build"]["target"]
        assert stage in dockerfile.stages, f"{name}: no stage {stage} in the Dockerfile"
        for argv in (command(service) or dockerfile.entrypoint(stage), healthcheck(service)):
            program = argv[0]
            if program in CONSOLE_SCRIPTS:
                continue
            path = host_path(service, program)
            assert path is not None, f"{name} runs {program}: not ours"
            assert path.is_file() and os.access(path, os.X_OK), f"{name}: {path} is not a script"
            assert dockerfile.copies(stage, program), f"{name}: {program} not in stage {stage}"
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: bind mount of {source} to {target}"


# ---------------------------------------------------------------- Dockerfile


class Dockerfile:
    """The instructions of each stage, continuation lines joined, comments dropped."""

    def __init__(self, stages: dict[str, list[tuple[str, str]]]) -> None:
        self.stages = stages

    @classmethod
    def parse(cls) -> Dockerfile:
        text = (ROOT / "Dockerfile").read_text()
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        stages: dict[str, list[tuple[str, str]]] = {}
        current: list[tuple[str, str]] = []
        for line in "\n".join(lines).replace("\\\n", " ").splitlines():
            if not line.strip():
                continue
            instruction, _, rest = line.strip().partition(" ")
            if instruction.upper() == "FROM":
                words = rest.split()
                assert len(words) == 3 and words[1].upper() == "AS", f"unnamed stage: {line}"
                current = stages.setdefault(words[2], [])
            current.append((instruction.upper(), rest.strip()))
        return cls(stages)

    def lines(self, stage: str, instruction: str) -> list[str]:
        return [rest for kind, rest in self.stages[stage] if kind == instruction]

    def copy_sources(self, stage: str) -> list[tuple[list[str], str]]:
        """(sources, destination) of each COPY from the build context."""
        copies = []
        for rest in self.lines(stage, "COPY"):
            words = shlex.split(rest)
            if any(word.startswith("--from=") for word in words):
                continue
            words = [word for word in words if not word.startswith("--")]
            copies.append((words[:-1], words[-1]))
        return copies

    def copies(self, stage: str, image_path: str) -> bool:
        """Whether a COPY of the stage puts the repository's file at `image_path`."""
        for sources, destination in self.copy_sources(stage):
            for source in sources:
                if source.endswith("/") and image_path.startswith(destination):
                    return True
                if destination.endswith("/") and image_path == destination + Path(source).name:
                    return True
        return False

    def entrypoint(self, stage: str) -> list[str]:
        return json.loads(self.lines(stage, "ENTRYPOINT")[-1])


def test_dockerfile_builds_wheels_in_one_stage_and_runs_without_a_compiler():
    dockerfile = Dockerfile.parse()
    assert {"build", "runtime", "swift"} <= set(dockerfile.stages)
    build = " ".join(dockerfile.lines("build", "RUN"))
    assert "gcc" in build and "libfuse3-dev" in build and "pip wheel" in build
    for stage in ("runtime", "swift"):
        for run in dockerfile.lines(stage, "RUN"):
            assert not COMPILERS.search(run), f"{stage} installs a compiler: {run}"
    assert any("--from=build" in line for line in dockerfile.lines("runtime", "COPY"))
    runtime_packages = " ".join(dockerfile.lines("runtime", "RUN"))
    assert "fuse3" in runtime_packages and "python3" in runtime_packages
    # The default target (the last stage) is the runtime image.
    assert list(dockerfile.stages)[-1] == "runtime"


def test_dockerfile_copies_only_files_that_exist_in_the_build_context():
    dockerfile = Dockerfile.parse()
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    # .dockerignore excludes everything, then lets in what the images need.
    assert "*" in ignore
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    copied = 0
    for stage in dockerfile.stages:
        for sources, _ in dockerfile.copy_sources(stage):
            for source in sources:
                assert (ROOT / source).exists(), f"stage {stage} copies missing {source}"
                name = source.rstrip("/")
                in_context = any(name == a or name.startswith(a + "/") for a in allowed)
                assert in_context, f"stage {stage} copies {source}, left out by .dockerignore"
                copied += 1
    assert copied


def test_dockerfile_bakes_in_no_secret():
    text = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"(?im)^\s*(ENV|ARG)\b.*(KEY|TOKEN|SECRET|PASSWORD)", text)


# ---------------------------------------------------------------- the containers' programs


def local(argv: list[str], service: dict) -> list[str]:
    """A compose command as this machine runs it: repository paths for the image's."""
    mapped = []
    for arg in argv:
        path = host_path(service, arg)
        mapped.append(
            str(path) if path else daemons.command(arg) if arg in CONSOLE_SCRIPTS else arg
        )
    return mapped


def status_port(line: str) -> int:
    return int(line.rstrip("/").rsplit(":", 1)[1])


def run_healthcheck(service: dict, port: int, published: int) -> subprocess.CompletedProcess:
    argv = [
        arg.replace(f":{published}", f":{port}") for arg in local(healthcheck(service), service)
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module", autouse=True)
def patient_start() -> Iterator[None]:
    """More time to say "ready": five Swift servers, or imgr formatting on Swift first."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(daemons, "READY_TIMEOUT", READY_SECONDS)
        yield


@pytest.fixture(scope="module")
def swift_aio(compose) -> Iterator[tuple[int, Path]]:
    """docker/swift-aio.py on a free port: (proxy port, its directory)."""
    directory = Path(tempfile.mkdtemp(prefix="objfs-swift-aio-"))
    proc = start_swift_aio(directory)
    try:
        yield int(proc.line.rsplit(":", 1)[1]), directory
    finally:
        daemons.stop(proc.proc)
        shutil.rmtree(directory, ignore_errors=True)


def start_swift_aio(directory: Path) -> daemons.Daemon:
    argv = [str(ROOT / "docker" / "swift-aio.py"), "--dir", str(directory), "--port", "0"]
    return daemons.start(argv, "swift listening on 0.0.0.0:", log=directory / "aio.log")


def test_swift_aio_answers_on_every_address(compose, swift_aio):
    port, directory = swift_aio
    swift = compose["services"]["swift"]
    assert run_healthcheck(swift, port, 8080).returncode == 0
    assert "bind_ip = 0.0.0.0" in (directory / "conf" / "proxy-server.conf").read_text()
    # 127.0.0.2 is an address of this machine that a proxy bound to 127.0.0.1 would refuse.
    storage_url, token = get_auth(f"http://127.0.0.2:{port}/auth/v1.0", "test:tester", "testing")
    assert token.startswith("AUTH_")
    # Other containers must be sent back to the name they asked for (swift:8080).
    assert storage_url.startswith(f"http://127.0.0.2:{port}/v1/")


def test_swift_aio_restarts_with_its_data_and_leaves_nothing_running():
    directory = Path(tempfile.mkdtemp(prefix="objfs-swift-aio-"))
    try:
        first = start_swift_aio(directory)
        try:
            put_container(*swift_auth(first.line), "kept")
            procs = json.loads((directory / "state.json").read_text())["procs"].values()
        finally:
            assert daemons.stop(first.proc) == 0
        assert not [p["pid"] for p in procs if alive(p["pid"])]
        again = start_swift_aio(directory)
        try:
            assert again.line == first.line  # the same port
            head_container(*swift_auth(again.line), "kept")
        finally:
            daemons.stop(again.proc)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def swift_auth(ready_line: str) -> tuple[str, str]:
    port = ready_line.rsplit(":", 1)[1]
    return get_auth(f"http://127.0.0.1:{port}/auth/v1.0", "test:tester", "testing")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Not tmp_path: another pytest session on this machine may rotate pytest-of-USER away.
    path = Path(tempfile.mkdtemp(prefix="objfs-docker-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def compose_env(compose, swift_aio, monkeypatch) -> dict[str, dict]:
    """imgr's and iclient's compose environment, aimed at the local all-in-one; PATH as in
    the image (the venv first); the compose services."""
    port, _ = swift_aio
    for key, value in compose["services"]["imgr"]["environment"].items():
        monkeypatch.setenv(key, value.replace("swift:8080", f"127.0.0.1:{port}"))
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return compose["services"]


def start_imgr(services: dict, ickpt: str, log: Path) -> daemons.Daemon:
    imgr = services["imgr"]
    local_addresses = ["--address", "127.0.0.1", "--port", "0", "--http-address", "127.0.0.1",
                       "--http-port", "0", "--ickpt", ickpt, "--id", "test-compose"]  # fmt: skip
    return daemons.start([*local(command(imgr), imgr), *local_addresses], "imgr listening on ", log)


def start_iclient(services: dict, imgr: str, cache: Path, mnt: Path, log: Path) -> daemons.Daemon:
    iclient = services["iclient"]
    local_addresses = ["--imgr", imgr, "--http-address", "127.0.0.1", "--http-port", "0",
                       "--cache-dir", str(cache), str(mnt)]  # fmt: skip
    argv = [*local(command(iclient), iclient), *local_addresses]
    return daemons.start(argv, f"iclient mounted objfs at {mnt}", log)


@contextmanager
def running(daemon: daemons.Daemon, log: Path) -> Iterator[daemons.Daemon]:
    """The daemon, stopped by PID at exit; that it then exits 0 is part of the test."""
    try:
        yield daemon
    finally:
        code = daemons.stop(daemon.proc)
    assert code == 0, log.read_text(errors="replace")[-3000:]


def test_compose_commands_format_once_mount_and_keep_files(compose_env, workdir):
    services = compose_env
    ickpt_argv = [*local(command(services["ickpt"]), services["ickpt"]), "--address", "127.0.0.1",
                  "--port", "0", "--store", f"file://{workdir / 'ickpt.log'}"]  # fmt: skip
    ickpt_log = workdir / "ickpt.err"
    with (
        mountpoint() as mnt,
        running(daemons.start(ickpt_argv, "ickpt listening on ", ickpt_log), ickpt_log) as ickpt,
    ):
        assert run_healthcheck(services["ickpt"], status_port(ickpt.line), 32357).returncode == 0
        ickpt_address = ickpt.line.rsplit(" ", 1)[1]
        for run, expected in enumerate(["formatted volume objfs", "formatted already"]):
            imgr_log, iclient_log = workdir / f"imgr{run}.log", workdir / f"iclient{run}.log"
            with running(start_imgr(services, ickpt_address, imgr_log), imgr_log) as imgr:
                assert expected in imgr_log.read_text()
                health = run_healthcheck(services["imgr"], status_port(imgr.line), 15346)
                assert health.returncode == 0, health.stderr
                imgr_rpc = imgr.line.split()[3].rstrip(",")
                iclient = start_iclient(services, imgr_rpc, workdir / "cache", mnt, iclient_log)
                with running(iclient, iclient_log):
                    health = run_healthcheck(services["iclient"], status_port(iclient.line), 15347)
                    assert health.returncode == 0, health.stderr
                    if run == 0:
                        (mnt / "hello").write_text("kept across restarts")
                    assert (mnt / "hello").read_text() == "kept across restarts"


def test_start_iclient_with_wrong_credentials_is_one_line(compose_env, monkeypatch, workdir):
    monkeypatch.setenv("ST_KEY", "wrong")
    iclient = compose_env["iclient"]
    argv = [*local(command(iclient), iclient), "--imgr", "127.0.0.1:1", str(workdir)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("start-iclient: ")
