"""Benchmark: refits per second of a power grid, locally and on a Dask LocalCluster.

Usage (from the repository root, after `make venv`; Dask comes with the ``cluster`` extra)::

    .venv/bin/python benchmarks/power.py              # 12 designs x 500 replicates
    .venv/bin/python benchmarks/power.py --reps 100   # a quicker look

The grid: a cluster-randomised trial with 30 groups of 20 (a random-intercept model,
``y ~ treatment + (1 | group)``), ICC 0.05, 0.10, 0.20 crossed with effects 0, 0.2, 0.4,
0.6: 12 designs. It runs four times -- 1 and 2 joblib (loky) workers on this machine, and
a ``LocalCluster`` with 1 and 2 single-threaded worker processes through joblib's Dask
backend -- and checks that all four give the same replicates. Wall times include starting
the workers. The CPU time per refit in one process is measured first: unlike the wall
times, it does not depend on what else the machine is doing (the load average is recorded
with each run). Results go to ``benchmarks/power.csv`` and are printed as a table. Target:
at least 250 refits per second with 2 workers.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import joblib
import pandas as pd

from mlmcourse import power

HERE = Path(__file__).resolve().parent
GRID = dict(n_groups=30, n_per_group=20, icc=[0.05, 0.1, 0.2], effect=[0.0, 0.2, 0.4, 0.6], test="t", seed=2026,
            progress=False)


def _timed(run) -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    table = run()
    return table, time.perf_counter() - start


def _cpu_per_refit(n_reps: int) -> float:
    """CPU milliseconds per replicate (draw, refit, test) in this process: a load-independent figure."""
    power.power_replicates("cluster_randomised", n_reps=5, n_jobs=1, **GRID)  # templates built and cached
    start = time.process_time()
    table = power.power_replicates("cluster_randomised", n_reps=n_reps, n_jobs=1, **GRID)
    return 1000 * (time.process_time() - start) / len(table)


def _local(n_reps: int, workers: int):
    return _timed(lambda: power.power_replicates("cluster_randomised", n_reps=n_reps, n_jobs=workers, **GRID))


def _on_cluster(n_reps: int, workers: int):
    from dask.distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None, host="127.0.0.1") as cluster, \
            Client(cluster), joblib.parallel_config(backend="dask"):
        table = power.power_replicates("cluster_randomised", n_reps=n_reps, n_jobs=-1, **GRID)
    return table, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500, help="replicates per design (default 500)")
    parser.add_argument("--no-dask", action="store_true", help="skip the LocalCluster runs")
    args = parser.parse_args()
    cpu_ms = _cpu_per_refit(max(args.reps // 10, 10))
    print(f"CPU time per refit in one process: {cpu_ms:.2f} ms (at most {1000 / cpu_ms:.0f} refits/s per core)")
    runs = [("local (joblib)", w, _local) for w in (1, 2)]
    if not args.no_dask:
        runs += [("LocalCluster (dask)", w, _on_cluster) for w in (1, 2)]
    rows, first = [], None
    for where, workers, run in runs:
        table, seconds = run(args.reps, workers)
        first = table if first is None else first
        identical = table.equals(first)
        refits = len(table)
        rows.append({"where": where, "workers": workers, "designs": 12, "replicates": args.reps, "refits": refits,
                     "wall_s": round(seconds, 2), "refits_per_s": round(refits / seconds, 1),
                     "identical_to_first": identical, "cpus": os.cpu_count(),
                     "load_average": round(os.getloadavg()[0], 1), "cpu_ms_per_refit_one_process": round(cpu_ms, 2)})
        print(rows[-1], flush=True)
    result = pd.DataFrame(rows)
    result.to_csv(HERE / "power.csv", index=False)
    print(result.to_markdown(index=False))


if __name__ == "__main__":
    main()
