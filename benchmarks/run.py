"""Benchmark: mlmcourse.lmer against statsmodels MixedLM (and lme4 when R is installed).

Usage (from the repository root, after `make venv`)::

    .venv/bin/python benchmarks/run.py            # all fits and the chapter timings
    .venv/bin/python benchmarks/run.py --no-chapters --repeat 3

Every fit runs in a fresh subprocess so that its peak memory (maximum resident set
size) can be read; each engine is timed in the same run on the same data, and the
ratios are printed. Results are written to ``benchmarks/results.csv`` and
``benchmarks/results.md`` (the table the book's appendix shows). Targets:
lmer >= 20x faster than statsmodels on HSB slopes-as-outcomes and >= 50x on
ScotsSec crossed; the InstEval-size fit under 2 GB; the InstEval-size fit, a crossed
model of Chem97's shape (31,022 rows, 2,410 x 1,000 levels) and the egsingle
three-level growth model with random slopes (Categorical ids) at most half of lme4's
time with the same log-likelihood to 1e-2; every chapter executes in under 60 s.
``--cases`` times only the named cases and keeps the saved rows of the others.
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
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

# name: (data builder, lme4 formula, statsmodels spec)
CASES = {
    "hsb_slopes_as_outcomes": (
        "MathAch ~ MEANSES + sector + cses + MEANSES:cses + sector:cses + (1 + cses | School)",
        {"formula": "MathAch ~ MEANSES + sector + cses + MEANSES:cses + sector:cses",
         "groups": "School", "re_formula": "~cses"},
    ),
    "scotssec_crossed": (
        "attain ~ verbal + sex + social + (1 | primary) + (1 | second)",
        {"formula": "attain ~ verbal + sex + social", "groups": "one",
         "vc_formula": {"primary": "0 + C(primary)", "second": "0 + C(second)"}},
    ),
    "sleepstudy": (
        "Reaction ~ Days + (Days | Subject)",
        {"formula": "Reaction ~ Days", "groups": "Subject", "re_formula": "~Days"},
    ),
    "nested_8000x10": (
        "y ~ x + (1 + x | g)",
        {"formula": "y ~ x", "groups": "g", "re_formula": "~x"},
    ),
    "insteval_size_crossed": (
        "y ~ service + (1 | s) + (1 | d) + (1 | dept)",
        None,  # statsmodels cannot fit crossed effects of this size (one dense 73,421-row group)
    ),
    # Two large models, each with string ids and with pandas Categorical ids (what read_stata returns)
    "chem97_shape_crossed_str": ("score ~ gcsecnt + (1 | school) + (1 | area)", None),
    "chem97_shape_crossed_cat": ("score ~ gcsecnt + (1 | school) + (1 | area)", None),
    "egsingle_growth_str": ("math ~ year + (year | schoolid) + (year | childid:schoolid)", None),
    "egsingle_growth_cat": ("math ~ year + (year | schoolid) + (year | childid:schoolid)", None),
}
#: Cases that must take at most half of lme4's time (Categorical ids).
LME4_HALF = ("insteval_size_crossed", "chem97_shape_crossed_cat", "egsingle_growth_cat")
#: The course's copy of mlmRev's egsingle (Raudenbush & Bryk 2002, ch. 8).
EGSINGLE_CSV = Path("/work/shared/datasets/egsingle.csv")

TARGETS = {"hsb_slopes_as_outcomes": 20.0, "scotssec_crossed": 50.0}


def build_data(name: str) -> pd.DataFrame:
    import mlmcourse

    if name == "hsb_slopes_as_outcomes":
        data = mlmcourse.load("hsb")
        data["cses"] = data["SES"] - data["MEANSES"]
        data["sector"] = (data["Sector"] == "Catholic").astype(float)
        return data
    if name == "scotssec_crossed":
        data = mlmcourse.load("scotssec")
        data["one"] = "all"
        return data
    if name == "sleepstudy":
        return mlmcourse.load("sleepstudy")
    if name == "nested_8000x10":
        rng = np.random.default_rng(8000)
        g = np.repeat(np.arange(8000), 10)
        x = rng.normal(size=g.size)
        u = rng.multivariate_normal([0, 0], [[4.0, 0.5], [0.5, 1.0]], size=8000)
        y = 10 + 2 * x + u[g, 0] + u[g, 1] * x + rng.normal(0, 3, g.size)
        return pd.DataFrame({"g": [f"g{i}" for i in g], "x": x, "y": y})
    if name == "insteval_size_crossed":
        return simulate_insteval_size(seed=73421)
    if name.startswith("chem97_shape_crossed"):
        return _ids_as(simulate_chem97_shape(seed=31022), ["school", "area"], name.endswith("_cat"))
    if name.startswith("egsingle_growth"):
        return _ids_as(load_egsingle(), ["schoolid", "childid"], name.endswith("_cat"))
    raise KeyError(name)


def _ids_as(data: pd.DataFrame, ids: list[str], categorical: bool) -> pd.DataFrame:
    for column in ids:
        data[column] = data[column].astype(str).astype("category" if categorical else object)
    return data


def load_egsingle() -> pd.DataFrame:
    """egsingle: 7,230 yearly maths scores of 1,721 children in 60 schools (the shared CSV)."""
    try:
        import mlmcourse

        return mlmcourse.load("egsingle")
    except KeyError:  # not among the package's data sets: read the shared copy
        return pd.read_csv(EGSINGLE_CSV, dtype={"schoolid": str, "childid": str})


def simulate_chem97_shape(seed: int) -> pd.DataFrame:
    """A crossed design shaped like mlmRev's Chem97: 31,022 A-level scores of students in
    2,410 schools, crossed with the 1,000 areas they live in, and a GCSE covariate.

    Each school draws most pupils from its own area and the rest from the three areas on
    either side, so the factors are crossed (not nested), as schools and neighbourhoods are.
    """
    rng = np.random.default_rng(seed)
    n, n_school, n_area = 31_022, 2_410, 1_000
    school = np.concatenate([np.arange(n_school), rng.integers(0, n_school, n - n_school)])
    rng.shuffle(school)
    home = rng.integers(0, n_area, n_school)
    away = rng.choice([-3, -2, -1, 1, 2, 3], n) * (rng.random(n) < 0.3)
    area = (home[school] + away) % n_area
    gcsecnt = rng.normal(0, 1.1, n)
    score = (5.8 + 2.4 * gcsecnt + rng.normal(0, 1.0, n_school)[school] + rng.normal(0, 0.4, n_area)[area]
             + rng.normal(0, 2.3, n))
    return pd.DataFrame({"score": score, "gcsecnt": gcsecnt, "school": [f"sch{i}" for i in school],
                         "area": [f"area{i}" for i in area]})


def simulate_insteval_size(seed: int) -> pd.DataFrame:
    """A crossed design the size of lme4's InstEval: 73,421 ratings, 2,972 students
    (s) x 1,128 lecturers (d) in 14 departments, lecturers nested in departments."""
    rng = np.random.default_rng(seed)
    n, n_s, n_d, n_dept = 73_421, 2_972, 1_128, 14
    dept_of_d = np.concatenate([np.arange(n_dept), rng.integers(0, n_dept, n_d - n_dept)])
    s = np.concatenate([np.arange(n_s), rng.integers(0, n_s, n - n_s)])
    d = np.concatenate([np.arange(n_d), rng.integers(0, n_d, n - n_d)])
    rng.shuffle(s)
    rng.shuffle(d)
    service = rng.integers(0, 2, n)
    y = (3.2 - 0.07 * service + rng.normal(0, 0.32, n_s)[s] + rng.normal(0, 0.51, n_d)[d]
         + rng.normal(0, 0.08, n_dept)[dept_of_d[d]] + rng.normal(0, 1.18, n))
    return pd.DataFrame({"y": y, "service": service.astype(float), "s": [f"s{i}" for i in s],
                         "d": [f"d{i}" for i in d], "dept": [f"dept{i}" for i in dept_of_d[d]]})


WORKER = r'''
import json, resource, sys, time, warnings
import pandas as pd
warnings.simplefilter("ignore")
engine, path, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
data = pd.read_pickle(path)
# Imports and the engine's first-call set-up are done before the clock starts, as R's
# library(lme4) is not timed either.
if engine == "mlmcourse":
    import mlmcourse
    mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
else:
    import statsmodels.formula.api as smf
start = time.perf_counter()
if engine == "mlmcourse":
    fit = mlmcourse.lmer(spec["lme4"], data)
    loglik = float(fit.loglik)
else:
    sm = spec["statsmodels"]
    model = smf.mixedlm(sm["formula"], data, groups=sm["groups"], re_formula=sm.get("re_formula"),
                        vc_formula=sm.get("vc_formula"))
    result = model.fit(reml=True)
    loglik = float(result.llf)
elapsed = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "loglik": loglik, "peak_mb": peak_mb}))
'''

R_WORKER = r'''
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
for (v in c("schoolid","childid")) if (v %in% names(d)) d[[v]] <- as.character(d[[v]])
ids <- c("School","primary","second","Subject","g","s","d","dept","school","area","schoolid","childid")
for (v in ids) if (v %in% names(d)) d[[v]] <- factor(d[[v]])
t <- system.time(m <- lmer(as.formula(args[2]), d))[["elapsed"]]
cat(sprintf('{"seconds": %.6f, "loglik": %.8f}\n', t, as.numeric(logLik(m))))
'''


def run_worker(engine: str, path: str, spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-c", WORKER, engine, path, json.dumps(spec)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"seconds": float("nan"), "loglik": float("nan"), "peak_mb": float("nan"),
                "note": f"did not finish in {timeout:.0f} s"}
    except subprocess.CalledProcessError as err:
        return {"seconds": float("nan"), "loglik": float("nan"), "peak_mb": float("nan"),
                "note": "failed: " + err.stderr.strip().splitlines()[-1][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_lme4(csv_path: str, formula: str, timeout: float) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as script:
        script.write(R_WORKER)
    try:
        out = subprocess.run(["Rscript", script.name, csv_path, formula], capture_output=True,
                             text=True, timeout=timeout)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as err:  # report, never hide, what went wrong with R
        return {"seconds": float("nan"), "loglik": float("nan"), "note": f"lme4 failed: {err}"}
    finally:
        os.unlink(script.name)


def best_of(engine, path, spec, repeat, timeout):
    runs = [run_worker(engine, path, spec, timeout) for _ in range(repeat)]
    return min(runs, key=lambda r: (np.isnan(r["seconds"]), r["seconds"]))


def time_fits(repeat: int, sm_timeout: float, cases: list[str] | None = None) -> pd.DataFrame:
    rows, has_r = [], shutil.which("Rscript") is not None
    with tempfile.TemporaryDirectory() as tmp:
        for name, (formula, sm_spec) in CASES.items():
            if cases and name not in cases:
                continue
            data = build_data(name)
            path = os.path.join(tmp, f"{name}.pkl")
            data.to_pickle(path)
            spec = {"lme4": formula, "statsmodels": sm_spec}
            ours = best_of("mlmcourse", path, spec, repeat, 600)
            theirs = (best_of("statsmodels", path, spec, 1, sm_timeout) if sm_spec else
                      {"seconds": float("nan"), "loglik": float("nan"), "peak_mb": float("nan"),
                       "note": "not attempted (too large for statsmodels)"})
            row = {"case": name, "rows": len(data), "mlmcourse_s": ours["seconds"],
                   "mlmcourse_peak_mb": ours["peak_mb"], "mlmcourse_loglik": ours["loglik"],
                   "statsmodels_s": theirs["seconds"], "statsmodels_loglik": theirs["loglik"],
                   "statsmodels_note": theirs.get("note", "")}
            if has_r:
                csv_path = os.path.join(tmp, f"{name}.csv")
                data.to_csv(csv_path, index=False)
                lme4 = run_lme4(csv_path, formula, 900) or {}
                row.update(lme4_s=lme4.get("seconds"), lme4_loglik=lme4.get("loglik"))
            rows.append(row)
            print(f"{name:26s} mlmcourse {ours['seconds']:8.3f} s  statsmodels "
                  f"{theirs['seconds']:8.3f} s {theirs.get('note', '')}", flush=True)
    table = pd.DataFrame(rows)
    table["speedup_vs_statsmodels"] = table["statsmodels_s"] / table["mlmcourse_s"]
    if has_r:
        table["lme4_over_mlmcourse"] = table["lme4_s"] / table["mlmcourse_s"]
    return table


def time_chapters() -> pd.DataFrame:
    sys.path.insert(0, str(ROOT / "tools"))
    import coursenb
    from nbclient import NotebookClient

    rows = []
    for chapter in coursenb.chapters():
        notebook = coursenb.plain_notebook(chapter)
        start = time.perf_counter()
        client = NotebookClient(notebook, timeout=180, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT / "book")}})
        try:
            client.execute()
            seconds = time.perf_counter() - start
        except Exception as err:  # a cell over 180 s or an error: report it, keep going
            print(f"{chapter.stem}: {type(err).__name__}", flush=True)
            seconds = float("nan")
        rows.append({"chapter": chapter.stem, "seconds": seconds})
        print(f"{chapter.stem:36s} {rows[-1]['seconds']:6.1f} s", flush=True)
    return pd.DataFrame(rows)


def report(fits: pd.DataFrame, chapters: pd.DataFrame | None) -> list[str]:
    lines, verdicts = [], []
    for case, target in TARGETS.items():
        ratio = fits.set_index("case").loc[case, "speedup_vs_statsmodels"]
        verdicts.append(f"{case}: {ratio:.1f}x faster than statsmodels (target >= {target:.0f}x): "
                        + ("met" if ratio >= target else "NOT met"))
    if "insteval_size_crossed" not in set(fits["case"]):
        return lines + verdicts + _lme4_half(fits)
    big = fits.set_index("case").loc["insteval_size_crossed"]
    verdicts.append(f"insteval_size_crossed: peak memory {big['mlmcourse_peak_mb']:.0f} MB "
                    f"(target < 2048 MB): " + ("met" if big["mlmcourse_peak_mb"] < 2048 else "NOT met"))
    verdicts += _lme4_half(fits)
    if chapters is not None and len(chapters):
        slow = chapters.loc[~(chapters["seconds"] < 60), "chapter"].tolist()
        verdicts.append("every chapter executes in under 60 s: " + ("met" if not slow else f"NOT met: {slow}"))
    lines += verdicts
    return lines


def _lme4_half(fits: pd.DataFrame) -> list[str]:
    """Verdicts: the large models take at most half of lme4's time, with lme4's log-likelihood."""
    if "lme4_s" not in fits:
        return ["lme4 times: R with lme4 is not installed here, so they are not measured"]
    table, out = fits.set_index("case"), []
    for case in LME4_HALF:
        if case not in table.index:
            continue
        row = table.loc[case]
        ratio = row["lme4_s"] / row["mlmcourse_s"]
        same = abs(row["lme4_loglik"] - row["mlmcourse_loglik"])
        out.append(f"{case}: lme4 takes {ratio:.1f}x as long (target >= 2x): " + ("met" if ratio >= 2 else "NOT met")
                   + f"; |loglik difference| {same:.2e} (target < 1e-2)")
    return out


def _merged(fits: pd.DataFrame) -> pd.DataFrame:
    """This run's rows in place of the same cases' rows of the saved results, in CASES order."""
    saved_path = HERE / "results.csv"
    if not saved_path.exists():
        return fits
    saved = pd.read_csv(saved_path)
    table = pd.concat([saved[~saved["case"].isin(fits["case"])], fits], ignore_index=True)
    order = {name: i for i, name in enumerate(CASES)}
    return table.sort_values("case", key=lambda c: c.map(order)).reset_index(drop=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="mlmcourse benchmark")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mlmcourse fit (best kept)")
    parser.add_argument("--statsmodels-timeout", type=float, default=900)
    parser.add_argument("--no-chapters", action="store_true")
    parser.add_argument("--cases", nargs="+", choices=list(CASES),
                        help="time only these cases; the saved results of the others are kept")
    parser.add_argument("--load", type=float, default=None,
                        help="note in the table the machine's load average during the run")
    args = parser.parse_args(argv)
    fits = time_fits(args.repeat, args.statsmodels_timeout, args.cases)
    fits["measured"] = time.strftime("%Y-%m-%d") + (f" (load {args.load:g})" if args.load else "")
    if args.cases:
        fits = _merged(fits)
    chapters = None if args.no_chapters else time_chapters()
    if chapters is None and (HERE / "chapter_times.csv").exists():
        chapters = pd.read_csv(HERE / "chapter_times.csv")  # the last measured chapter times
    fits.to_csv(HERE / "results.csv", index=False)
    if not args.no_chapters:
        chapters.to_csv(HERE / "chapter_times.csv", index=False)
    write_markdown(fits, chapters)
    return 0


def write_markdown(fits: pd.DataFrame, chapters: pd.DataFrame | None) -> None:
    """benchmarks/results.md: the fits (with the date each was measured), chapter times, targets."""
    verdicts = report(fits, chapters)
    fits = fits.assign(measured=fits["measured"].fillna("")) if "measured" in fits else fits
    columns = ["case", "rows", "mlmcourse_s", "statsmodels_s", "speedup_vs_statsmodels", "mlmcourse_peak_mb"]
    columns += [c for c in ("lme4_s", "lme4_over_mlmcourse", "measured") if c in fits]
    md = ["## Benchmark results", "", f"On {os.cpu_count()} cores; lme4 is timed in the same run as mlmcourse "
          "(`lme4_over_mlmcourse` > 1: mlmcourse is faster).", "",
          fits[columns].to_markdown(index=False, floatfmt=".3f"), ""]
    if chapters is not None:
        md += ["### Chapter execution times", "", chapters.to_markdown(index=False, floatfmt=".1f"), ""]
    md += ["### Targets", ""] + [f"- {v}" for v in verdicts]
    (HERE / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(verdicts))


if __name__ == "__main__":
    sys.exit(main())
