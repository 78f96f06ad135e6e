"""The fleet audit on a real Dask distributed cluster: a ``LocalCluster`` of two worker processes.

The same audit as ``test_fleet.test_process_pool_audit`` (the whole test registry, the image behind auth,
a missing tag), run with the cluster's ``Client`` and again through its scheduler address, must give the
same DataFrames as the local process pool (``test_fleet.baseline``, run here if test_fleet has not); each
distinct layer is scanned once, on the workers, whose own scan cache then holds the scans.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest
from distributed import Client, LocalCluster

from ocilens.fleet import audit

try:
    from . import test_fleet as tf
except ImportError:
    import test_fleet as tf


# the test registry's fleet and the default (process-pool) audit of it, each made once per session by
# whichever test of the two files asks first; and a fresh cache per test
fleet, baseline, isolated = tf.fleet, tf.baseline, tf.isolated


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Path]]:
    """Two worker processes with a scan cache of their own (the environment they are started with)."""
    worker_cache = tmp_path_factory.mktemp("dask-worker-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OCILENS_CACHE_DIR", str(worker_cache))
        mp.setenv("DOCKER_CONFIG", str(worker_cache / "no-docker-config"))
        with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                          scheduler_port=0, silence_logs=40) as c:
            mp.undo()
            yield c, worker_cache


def test_dask_client_gives_the_same_frames(fleet: tf.Fleet, cluster: tuple[LocalCluster, Path],
                                           baseline: tf.Baseline, isolated: Path) -> None:
    c, worker_cache = cluster
    shutil.rmtree(worker_cache / "scans", ignore_errors=True)  # whichever test ran on the cluster before
    events: list[str] = []
    with Client(c) as client:
        a = audit(fleet.refs, executor=client, progress=lambda e, **kw: events.append(e))
        workers = set(client.scheduler_info()["workers"])
    assert a.executor == "dask"
    truth = fleet.layer_digests(fleet.main_refs)
    assert a.scanned_layers == len(truth) and a.failed_layers == 1 and len(a.layers) == len(truth)
    assert events.count("fleet_layer_done") == len(truth) and events[-1] == "fleet_done"
    # The scans ran on the workers: their pids are not ours, and their cache holds every good scan.
    assert a.workers and all(not w.endswith(f":{os.getpid()}") for w in a.workers)
    assert len(a.workers) <= len(workers)
    assert len(list((worker_cache / "scans").rglob("*.pickle"))) == len(truth) - 1
    # The driver keeps what the workers sent back, for later single loads.
    assert len(list((isolated / "scans").rglob("*.pickle"))) == len(truth) - 1
    tf.assert_same_audit(a, baseline.audit)


def test_dask_scheduler_address(fleet: tf.Fleet, cluster: tuple[LocalCluster, Path]) -> None:
    """A scheduler address is connected to (and the connection closed) by the audit; the workers, their
    own scan cache emptied first (whatever ran on the cluster before), scan every layer and keep the scans."""
    c, worker_cache = cluster
    shutil.rmtree(worker_cache / "scans", ignore_errors=True)
    refs = [fleet.ref("team/api:3"), fleet.ref("team/web:3"), fleet.ref(tf.BROKEN)]
    a = audit(refs, executor=c.scheduler_address, progress=False)
    assert a.executor == "dask"
    assert a.scanned_layers == len(fleet.layer_digests(refs)) and a.cached_layers == 0 and a.failed_layers == 1
    assert len(list((worker_cache / "scans").rglob("*.pickle"))) == len(fleet.layer_digests(refs)) - 1
    assert set(a.layers["digest"]) == fleet.layer_digests(refs)
    assert a.layers.set_index("digest").loc[fleet.broken_digest, "status"] == "failed"
    assert list(a.errors["reference"]) == [fleet.ref(tf.BROKEN)]
    b = audit(refs, executor="thread", progress=False)
    tf.assert_same_audit(a, b)
