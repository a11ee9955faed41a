"""objfs fsck on real volumes: clean after a workload, named damage, orphans, lost inodes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal

import pytest
import trio

from ickpt.remote import RemoteStore
from layout.blocksums import BLOCK_SIZE
from layout.naming import object_name
from objfs.fsck.edit import VolumeEdit
from objfs.storage import open_store
from tests import daemons
from tests.deployment import deployed
from tests.fsck.helpers import (
    MIB,
    container_dir,
    fsck_json,
    mounted,
    objfs,
    same_tree,
    segments,
    unused_name,
    volume_at_rest,
)
from tests.mounts import VOLUME, iclient, mountpoint, serve_volume


@pytest.mark.parametrize("backend", ["file", "swift"])
def test_clean_after_a_mixed_workload(request, tmp_path, backend):
    with deployed(request, tmp_path) as deployment, volume_at_rest(deployment, backend) as (url, _):
        done = objfs(deployment, "fsck", url)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines()[-1] == "clean"
        code, report = fsck_json(deployment, url)
        assert code == 0 and report["result"] == "clean"
        counts = report["counts"]
        assert counts["files"] >= 200 and counts["directories"] >= 5 and counts["symlinks"] == 2
        assert counts["bytes_checked"] > 3 * MIB  # the data was read, not only the metadata


def test_a_flipped_byte_names_its_object_offset_and_paths(request, tmp_path):
    data = os.urandom(MIB)
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, "file")
        with mounted(deployment, imgr, url) as path:
            (path / "other").write_bytes(os.urandom(100000))
            (path / "sub").mkdir()
            (path / "victim").write_bytes(data)
            os.link(path / "victim", path / "sub" / "second-name")
            (path / "after").write_bytes(os.urandom(5000))
        assert daemons.stop(imgr.proc) == 0
        holder, start = _find(url, data)
        flip = start + len(data) // 2
        _flip_byte(holder, flip)
        block = flip // BLOCK_SIZE * BLOCK_SIZE

        done = objfs(deployment, "fsck", url)
        assert done.returncode == 4, done.stdout + done.stderr
        assert f"object {holder.name} at {block}: " in done.stdout
        code, report = fsck_json(deployment, url)
        assert code == 4
        [problem] = report["problems"]
        assert problem["kind"] == "block"
        assert (problem["object"], problem["offset"]) == (holder.name, block)
        assert problem["paths"] == ["/sub/second-name", "/victim"]
        assert not report["orphan_objects"] and not report["lost_inodes"]


def _find(url, data):
    """The object holding `data` in one piece, and where it starts there."""
    for path in segments(url):
        blob = path.read_bytes()
        at = blob.find(data[:4096])
        if at >= 0 and blob[at : at + len(data)] == data:
            return path, at
    raise AssertionError("the file's data is in no object in one piece")


def _flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


def test_an_orphan_is_listed_and_repair_deletes_it(request, tmp_path):
    with deployed(request, tmp_path) as deployment, volume_at_rest(deployment, "file") as (url, _):
        orphan = container_dir(url) / unused_name(url)
        shutil.copyfile(segments(url)[0], orphan)

        done = objfs(deployment, "fsck", url)
        assert done.returncode == 4, done.stdout + done.stderr
        assert f"orphan object {orphan.name} " in done.stdout
        code, report = fsck_json(deployment, url)
        assert [o["object"] for o in report["orphan_objects"]] == [orphan.name]
        assert not report["problems"] and not report["lost_inodes"]

        done = objfs(deployment, "fsck", url, "--repair")
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"orphan object {orphan.name} " in done.stdout and "[deleted]" in done.stdout
        assert not orphan.exists()
        assert objfs(deployment, "fsck", url).returncode == 0


async def _unlink_without_the_inode(url, ickpt, names):
    """Remove entries of the root directory and nothing else: their inodes are lost."""
    host, port = ickpt.split(":")
    async with open_store(url) as store, RemoteStore(host, int(port)) as ckpt:
        edit = await VolumeEdit.open(store, ckpt, VOLUME)
        root, location = await edit.head(1)
        tree = edit.tree(root)
        numbers = []
        for name in names:
            numbers.append((await tree.get(name)).inode)
            assert await tree.delete(name)
        await edit.put(root, tree, location)
        await edit.commit()
        return numbers


def test_lost_inodes_are_named_and_moved_to_lost_and_found(request, tmp_path):
    with (
        deployed(request, tmp_path) as deployment,
        volume_at_rest(deployment, "file") as (
            url,
            expected,
        ),
    ):
        file, directory = trio.run(
            _unlink_without_the_inode, url, deployment.ickpt, [b"renamed", b"moved"]
        )
        code, report = fsck_json(deployment, url)
        assert code == 4
        lost = {item["inode"]: item for item in report["lost_inodes"]}
        assert lost[file]["name"] == "/renamed" and lost[file]["type"] == "REGULAR"
        assert lost[directory]["name"] == "/moved" and lost[directory]["type"] == "DIRECTORY"
        inside = {n: item["name"] for n, item in lost.items() if n not in (file, directory)}
        assert list(inside.values()) == ["/moved/sym"]  # what the lost directory alone names
        assert not report["problems"]

        code, report = fsck_json(deployment, url, "--repair")
        assert code == 1, report
        moved = {item["inode"]: item["moved_to"] for item in report["lost_inodes"]}
        assert moved.pop(file) == f"/lost+found/#{file}"
        assert moved.pop(directory) == f"/lost+found/#{directory}"
        assert list(moved.values()) == [f"/lost+found/#{directory}/sym"]
        done = objfs(deployment, "fsck", url)
        assert done.returncode == 0, done.stdout + done.stderr

        imgr = deployment.start_imgr({VOLUME: url}, "--lease-timeout", "60")
        with mounted(deployment, imgr, url) as path:
            found = path / "lost+found"
            assert oct(found.stat().st_mode & 0o777) == "0o700"
            assert sorted(os.listdir(found)) == sorted([f"#{file}", f"#{directory}"])
            renamed = (expected / "renamed").read_bytes()
            assert (found / f"#{file}").read_bytes() == renamed
            same_tree(expected / "moved", found / f"#{directory}")
            assert not (path / "renamed").exists() and not (path / "moved").exists()


def test_repair_is_refused_while_an_imgr_serves_the_volume(request, tmp_path):
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, "file")
        done = objfs(deployment, "fsck", url, "--repair")
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and "served by imgr" in lines[0], done.stderr
        assert imgr.proc.poll() is None
        # A check without --repair reads a served volume without claiming it.
        assert objfs(deployment, "fsck", url).returncode == 0


def test_an_inode_deleted_while_open_is_no_problem(request, tmp_path):
    """An inode unlinked on one mount while another has it open stays, listed in the
    superblock as deleted while open (an orphan): not lost, not an error."""
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, "file")
        with mountpoint() as a, mountpoint() as b:
            with iclient(deployment, imgr, url, a), iclient(deployment, imgr, url, b) as holder:
                (a / "held").write_bytes(os.urandom(300000))
                held = os.open(b / "held", os.O_RDONLY)
                os.unlink(a / "held")
                directory = os.open(a, os.O_RDONLY)
                os.fsync(directory)  # in a checkpoint: deleted, but open on b
                os.close(directory)
                daemons.stop(holder.proc, signal.SIGKILL)  # b never closes it
                with contextlib.suppress(OSError):
                    os.close(held)
        assert daemons.stop(imgr.proc) == 0
        code, report = fsck_json(deployment, url)
        assert report["counts"]["deleted_while_open"] == 1, json.dumps(report)
        assert code == 0, json.dumps(report)


async def _payload_of_root(url, ickpt):
    host, port = ickpt.split(":")
    async with open_store(url) as store, RemoteStore(host, int(port)) as ckpt:
        edit = await VolumeEdit.open(store, ckpt, VOLUME)
        root, _ = await edit.head(1)
        return root.payload


def test_a_damaged_directory_is_named_and_nothing_is_repaired_past_it(request, tmp_path):
    with deployed(request, tmp_path) as deployment, volume_at_rest(deployment, "file") as (url, _):
        page = trio.run(_payload_of_root, url, deployment.ickpt)
        holder = container_dir(url) / object_name(page.object)
        _flip_byte(holder, page.offset + page.length // 2)
        orphan = container_dir(url) / unused_name(url)
        shutil.copyfile(segments(url)[-1], orphan)

        code, report = fsck_json(deployment, url, "--repair")
        assert code == 4 and not report["complete"]
        tree = [p for p in report["problems"] if p["kind"] == "tree"]
        assert [(p["object"], p["offset"], p["paths"]) for p in tree] == [
            (holder.name, page.offset, ["/"])
        ]
        assert report["not_repaired"] and orphan.exists()
        assert not any(item["moved_to"] for item in report["lost_inodes"])
        names = {item["name"] for item in report["lost_inodes"]}
        assert {"/d1", "/many", "/renamed"} <= names  # hidden by the damage, named all the same
