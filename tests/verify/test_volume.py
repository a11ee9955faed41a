"""objfs verify COPY URL: a volume read straight from its checkpoint, without a mount."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from objfs.manifest import ManifestWriter, scan_local
from tests import daemons
from tests.deployment import Deployment, deployed
from tests.fsck.helpers import mixed_workload, mounted
from tests.mounts import VOLUME, serve_volume
from tests.verify.helpers import copy_tree, differences, every_kind, verify


@contextmanager
def volume_and_copy(deployment: Deployment, backend: str) -> Iterator[tuple[str, Path]]:
    """A volume written through a real mount, then left at rest; and a `cp -a` of the mount,
    which `objfs verify COPY MNT` found equal to the mount."""
    url, imgr = serve_volume(deployment, backend)
    copy = deployment.tmp / "copy"
    copy.mkdir()
    with mounted(deployment, imgr, url) as path:
        mixed_workload(path)
        every_kind(path / "kinds")
        copy_tree(path, copy)
        done = verify(copy, path)
        assert done.returncode == 0, done.stdout + done.stderr
    assert daemons.stop(imgr.proc) == 0
    yield url, copy


def volume_verify(deployment: Deployment, *args: str | Path):
    return verify(*args, "--ickpt", deployment.ickpt, "--name", VOLUME)


@pytest.mark.parametrize("backend", ["file", "swift"])
def test_a_copy_of_the_mount_equals_the_volume_until_it_changes(request, tmp_path, backend):
    with deployed(request, tmp_path) as deployment:
        with volume_and_copy(deployment, backend) as (url, copy):
            done = volume_verify(deployment, copy, url)
            assert done.returncode == 0, done.stdout + done.stderr
            assert not done.stdout
            count = int(done.stderr.split()[0])
            assert count > 200 and done.stderr.strip().endswith(" 0 differences")
            manifest = tmp_path / "copy.manifest"
            with ManifestWriter(manifest) as writer:
                for entry in scan_local(copy, on_error=print):
                    writer.write(entry)

            with kept_mtime(copy / "sparse"):
                with open(copy / "sparse", "r+b") as f:
                    f.seek(5 * 1024 * 1024)
                    f.write(b"!")
            os.setxattr(copy / "kinds" / "empty", "user.empty", b"changed")
            with kept_mtime(copy / "kinds" / "dir" / "sub"):
                (copy / "kinds" / "dir" / "sub" / "hard").unlink()
            done = volume_verify(deployment, copy, url)
            assert done.returncode == 1, done.stdout + done.stderr
            assert differences(done) == [
                "kinds/dir/sub/hard: not expected",
                "kinds/empty: xattrs differ",
                "sparse: content differs",
            ]
            assert done.stderr.strip().endswith(" 3 differences")
            done = volume_verify(deployment, "--manifest", manifest, url)
            assert done.returncode == 0, done.stdout + done.stderr


@contextmanager
def kept_mtime(path: Path) -> Iterator[None]:
    """Change `path` inside, then set its times back."""
    st = os.stat(path)
    yield
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
