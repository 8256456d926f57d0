"""The power grid on a Dask cluster (a LocalCluster on loopback): the same numbers as a local run.

dask[distributed] comes with the ``cluster`` and ``dev`` extras. Without it the tests skip on a
developer's machine but fail in CI (CI=true), where the extra must be installed.
"""

import os
import signal
import threading
import time

import joblib
import pandas as pd
import pytest

from mlmcourse import power

try:
    from dask.distributed import Client, LocalCluster
except ImportError:  # pragma: no cover - depends on the installation
    Client = LocalCluster = None

GRID = dict(n_groups=[6, 8], n_per_group=5, icc=0.1, effect=0.5, seed=7, progress=False)


@pytest.fixture(scope="module")
def client():
    if Client is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("dask[distributed] is not installed; CI installs it with the 'dev' extra")
        pytest.skip("dask[distributed] is not installed (pip install 'mlmcourse[cluster]')")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, host="127.0.0.1",
                           processes=True)
    with Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


def _on_dask(n_reps: int) -> pd.DataFrame:
    with joblib.parallel_config(backend="dask"):
        return power.power_replicates("cluster_randomised", n_reps=n_reps, n_jobs=-1, **GRID)


def test_dask_results_equal_the_local_run_bit_for_bit(client):
    local = power.power_replicates("cluster_randomised", n_reps=12, n_jobs=1, **GRID)
    assert len(client.scheduler_info()["workers"]) == 2
    pd.testing.assert_frame_equal(_on_dask(12), local, check_exact=True)


def _kill_a_busy_worker(client, report: dict) -> None:
    """Wait until a worker is running a replicate, then SIGKILL its process (its nanny starts a new one)."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        busy = [address for address, keys in client.processing().items() if keys and address in pids]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            report["killed"], report["at"] = pids[busy[0]], time.monotonic()
            return
        time.sleep(0.02)


def test_killing_a_worker_mid_run_loses_and_repeats_no_replicate(client):
    n_reps = 60
    local = power.power_replicates("cluster_randomised", n_reps=n_reps, n_jobs=1, **GRID)
    report: dict = {}
    killer = threading.Thread(target=_kill_a_busy_worker, args=(client, report), daemon=True)
    start = time.monotonic()
    killer.start()
    remote = _on_dask(n_reps)
    finished = time.monotonic()
    killer.join()
    assert "killed" in report, "no worker was busy to be killed"
    assert report["at"] < finished  # the worker died while the grid was running
    assert finished - start < 60
    keys = remote[["n_groups", "rep"]].apply(tuple, axis=1)
    assert keys.is_unique and len(keys) == 2 * n_reps
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
