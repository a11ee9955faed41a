"""objfs verify given what it cannot use: one line on stderr, exit 2, nothing on stdout."""

from __future__ import annotations

import pytest

from tests.deployment import deployed
from tests.fsck.helpers import segments
from tests.mounts import VOLUME
from tests.storage.backends import swift_url
from tests.verify.helpers import verify


def _one_line(done, fragment: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("objfs verify: "), done.stderr
    assert fragment in lines[0], lines[0]
    assert not done.stdout


LOCAL = {
    "no such SRC": (["{tmp}/absent", "{tmp}"], "SRC {tmp}/absent: no such directory"),
    "no such MNT": (["{tmp}", "{tmp}/absent"], "MNT {tmp}/absent: no such directory"),
    "SRC and a manifest": (["--manifest", "{tmp}/m", "{tmp}", "{tmp}"], "either SRC or --manifest"),
    "neither": (["{tmp}"], "either SRC or --manifest"),
    "no such manifest": (["--manifest", "{tmp}/absent", "{tmp}"], "{tmp}/absent: cannot read"),
    "not a manifest": (["--manifest", "{tmp}/m", "{tmp}"], "{tmp}/m:1: not an objfs manifest"),
    "a bad line": (["--manifest", "{tmp}/bad", "{tmp}"], "{tmp}/bad:2: missing keys"),
}


@pytest.mark.parametrize("case", list(LOCAL))
def test_bad_local_input(tmp_path, case):
    (tmp_path / "m").write_text("path,size\n")
    (tmp_path / "bad").write_text('{"objfs-manifest": 1}\n{"path": "."}\n')
    argv, fragment = LOCAL[case]
    done = verify(*(arg.format(tmp=tmp_path) for arg in argv))
    _one_line(done, fragment.format(tmp=tmp_path))


REMOTE = ["no such volume", "unreachable swift", "unreachable ickpt", "objects gone"]


@pytest.mark.parametrize("case", REMOTE)
def test_bad_volume_input(request, tmp_path, monkeypatch, case):
    monkeypatch.setenv("OBJFS_CREDENTIALS", str(tmp_path / "no-credentials.toml"))
    with deployed(request, tmp_path) as deployment:
        url = deployment.volume_url("file")
        if case != "no such volume":
            assert deployment.format(VOLUME, url).returncode == 0
        ickpt = deployment.ickpt
        fragment = "no volume vol in the checkpoint store"
        if case == "unreachable swift":
            url = swift_url({}, "c", auth_url="http://127.0.0.1:9/auth/v1.0", user="a:b", key="k")
            fragment = "cannot reach"
        elif case == "unreachable ickpt":
            ickpt, fragment = "127.0.0.1:9", "checkpoint store 127.0.0.1:9"
        elif case == "objects gone":
            for segment in segments(url):
                segment.unlink()
            fragment = "the object is missing"
        done = verify(tmp_path, url, "--ickpt", ickpt, "--name", VOLUME)
        _one_line(done, fragment)
