"""Benchmark: mlmcourse.glmer against lme4::glmer, timed in the same run (lme4 when R is installed).

Usage (from the repository root, after `make venv`)::

    .venv/bin/python benchmarks/glmer.py              # best of 3 per engine
    .venv/bin/python benchmarks/glmer.py --repeat 5

Cases: the contraception model of the binary-outcomes chapter (1,934 women, 60
districts) and a simulated crossed binary model (300 subjects x 40 items,
12,000 responses; seeded). Both engines fit the same CSV with their defaults
(Laplace approximation); the table reports the best wall-clock time of each,
their ratio and the difference in log-likelihood. Results go to
``benchmarks/glmer_results.csv`` and ``benchmarks/glmer_results.md``. Target:
glmer at least as fast as lme4.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

CASES = {
    "contraception": "use ~ urban + livch + age + (1 | district)",
    "crossed_300x40": "y ~ x + (1 | subject) + (1 | item)",
}

R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
for (col in c("district", "subject", "item")) if (col %in% names(d)) d[[col]] <- factor(d[[col]])
repeats <- as.integer(args[3])
times <- numeric(repeats)
for (i in seq_len(repeats)) {
  times[i] <- system.time(m <- suppressWarnings(glmer(as.formula(args[2]), d, family = binomial)))[["elapsed"]]
}
cat(sprintf('{"seconds": %.6f, "loglik": %.8f}\n', min(times), as.numeric(logLik(m))))
"""


def simulate_crossed(seed: int = 2026, subjects: int = 300, items: int = 40) -> pd.DataFrame:
    """Binary responses of every subject to every item: logit = -0.3 + 0.8 x + u_subject + w_item."""
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(subjects), items)
    item = np.tile(np.arange(items), subjects)
    x = rng.normal(size=subjects * items)
    eta = -0.3 + 0.8 * x + rng.normal(0, 0.9, subjects)[subject] + rng.normal(0, 0.6, items)[item]
    y = (rng.uniform(size=len(eta)) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "subject": [f"s{k}" for k in subject], "item": [f"i{k}" for k in item]})


def build_data(name: str) -> pd.DataFrame:
    import mlmcourse

    return mlmcourse.load("contraception") if name == "contraception" else simulate_crossed()


def time_glmer(formula: str, data: pd.DataFrame, repeat: int) -> dict:
    from mlmcourse import glmer

    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        glmer(formula, data)  # warm-up: imports and compiled-core set-up
        for _ in range(repeat):
            start = time.perf_counter()
            fit = glmer(formula, data)
            times.append(time.perf_counter() - start)
    return {"seconds": min(times), "loglik": fit.loglik}


def time_lme4(formula: str, data: pd.DataFrame, repeat: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        csv, script = Path(folder) / "data.csv", Path(folder) / "fit.R"
        data.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # one BLAS thread, as glmer
        out = subprocess.run(["Rscript", str(script), str(csv), formula, str(repeat)], capture_output=True,
                             text=True, timeout=1800, env=env)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for name, formula in CASES.items():
        data = build_data(name)
        ours, theirs = time_glmer(formula, data, args.repeat), time_lme4(formula, data, args.repeat)
        row = {"case": name, "rows": len(data), "glmer_s": ours["seconds"]}
        if theirs is not None:
            row.update({"lme4_s": theirs["seconds"], "speedup_vs_lme4": theirs["seconds"] / ours["seconds"],
                        "loglik_difference": ours["loglik"] - theirs["loglik"]})
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(HERE / "glmer_results.csv", index=False)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = ["## glmer benchmark", "", f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores "
             f"(load average at the end: {load}); best of {args.repeat} fits per engine, "
             "both with their default Laplace fit. loglik_difference is glmer's log-likelihood minus lme4's "
             "(positive: glmer found a higher maximum).", "", table.to_markdown(index=False, floatfmt=".4g"), ""]
    (HERE / "glmer_results.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
