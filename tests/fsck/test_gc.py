"""objfs gc on a served volume: old orphans go, fresh ones and everything referenced stay."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
import trio

from layout.naming import object_name
from objfs.storage import open_store
from tests import daemons
from tests.deployment import deployed
from tests.fsck.helpers import (
    container_dir,
    fsck_json,
    mounted,
    objfs,
    same_tree,
    segments,
    unused_name,
    volume_at_rest,
)
from tests.mounts import VOLUME

TWO_HOURS = 7200


def test_gc_deletes_old_orphans_and_keeps_fresh_and_referenced_ones(request, tmp_path):
    with (
        deployed(request, tmp_path) as deployment,
        volume_at_rest(deployment, "file") as (
            url,
            expected,
        ),
    ):
        container = container_dir(url)
        old = container / unused_name(url)
        shutil.copyfile(segments(url)[0], old)
        then = time.time() - TWO_HOURS
        os.utime(old, (then, then))  # what a client that crashed two hours ago left
        fresh = container / unused_name(url, 1 << 41)
        shutil.copyfile(segments(url)[1], fresh)  # as if a live client uploaded it just now
        imgr = deployment.start_imgr({VOLUME: url}, "--lease-timeout", "60")  # gc runs served

        dry = objfs(deployment, "gc", url, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"would delete object {old.name} " in dry.stdout
        assert f"kept object {fresh.name}: " in dry.stdout
        assert old.exists()

        done = objfs(deployment, "gc", url, "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert [o["object"] for o in result["deleted"]] == [old.name]
        assert [o["object"] for o in result["kept"]] == [fresh.name]
        assert not old.exists() and fresh.exists()

        # Everything referenced is still there: the volume reads whole and fsck misses nothing.
        with mounted(deployment, imgr, url) as path:
            same_tree(expected, path)
        assert daemons.stop(imgr.proc) == 0
        code, report = fsck_json(deployment, url)
        assert [o["object"] for o in report["orphan_objects"]] == [fresh.name]
        assert not report["problems"] and not report["lost_inodes"], report


@pytest.mark.parametrize("backend", ["swift", "azure"])
def test_gc_reads_object_ages_on_remote_stores(request, tmp_path, backend):
    with deployed(request, tmp_path) as deployment:
        url = deployment.volume_url(backend)
        assert deployment.format(VOLUME, url).returncode == 0
        orphan = trio.run(_copy_a_segment, url)

        kept = objfs(deployment, "gc", url, "--json")
        assert kept.returncode == 0, kept.stderr
        [young] = json.loads(kept.stdout)["kept"]
        assert young["object"] == orphan and 0 <= time.time() - young["modified"] < 600

        done = objfs(deployment, "gc", url, "--min-age", "0", "--json")
        assert done.returncode == 0, done.stderr
        assert [o["object"] for o in json.loads(done.stdout)["deleted"]] == [orphan]
        code, report = fsck_json(deployment, url)
        assert code == 0, report


async def _copy_a_segment(url: str) -> str:
    """A copy of the volume's segment under an unused name: an orphan made just now."""
    async with open_store(url) as store:
        names = [info.name async for info in store.list() if info.name != object_name(0)]
        name = object_name(1 << 40)
        await store.put(name, await store.get(names[0]))
        return name
