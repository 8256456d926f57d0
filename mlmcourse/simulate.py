"""Data generators for the chapters and tests, and the one simulation runner.

Every generator takes ``seed`` (an int, None or a ``numpy.random.Generator``)
and returns a tidy DataFrame whose group ids are zero-padded strings ("01",
"02", ...), so that their alphabetical order is their numeric order. The
true values behind the data are in ``df.attrs`` as plain lists and numbers.

:func:`run_simulation` repeats a user function with independent random
streams, optionally in parallel, and stacks the results into one DataFrame.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import joblib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

__all__ = [
    "simulate_two_level",
    "true_effects",
    "simulate_clustered",
    "simulate_crossed",
    "simulate_random_intercept",
    "run_simulation",
]


def _ids(count: int) -> list[str]:
    width = len(str(count))
    return [f"{i + 1:0{width}d}" for i in range(count)]


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def _group_sizes(rng: np.random.Generator, n_groups: int, size) -> np.ndarray:
    if np.ndim(size) == 0:
        return np.full(n_groups, _positive_int(size, "n_per_group"))
    sizes = np.asarray(size)
    if len(sizes) != n_groups:
        raise ValueError(f"n_per_group has {len(sizes)} sizes for {n_groups} groups")
    return np.array([_positive_int(s, "each group size") for s in sizes])


# --------------------------------------------------------------------------- two-level model
def simulate_two_level(n_groups: int, mean_size: float = 30, gamma: Sequence[float] = (12, 2),
                       G: Sequence[Sequence[float]] = ((16, 8), (8, 25)), sigma2: float = 20,
                       seed=None, x_sd: float = 1.0, size_dist: str = "poisson") -> pd.DataFrame:
    """Random intercepts and slopes: simulated groups with a known G and sigma^2.

    Parameters
    ----------
    n_groups : int
    mean_size : float, default 30
        Mean group size.
    gamma : (float, float), default (12, 2)
        Mean intercept and slope.
    G : 2 x 2 matrix, default [[16, 8], [8, 25]]
        Covariance matrix of the random intercepts and slopes.
    sigma2 : float, default 20
        Residual variance.
    seed : int, None or numpy Generator
    x_sd : float, default 1
        SD of the covariate x ~ N(0, x_sd^2).
    size_dist : {"poisson", "fixed"}
        Group sizes n_j ~ Poisson(mean_size), at least 2, or all equal to
        ``round(mean_size)``.

    Returns
    -------
    DataFrame
        Columns ``group`` (str), ``x``, ``y``. ``attrs`` holds the arguments
        and ``"true_effects"``: per group ``u0``, ``u1`` and the true
        ``intercept`` and ``slope`` (see :func:`true_effects`).

    Notes
    -----
    :math:`y_{ij} = (\\gamma_0 + u_{0j}) + (\\gamma_1 + u_{1j}) x_{ij} + \\varepsilon_{ij}`,
    :math:`u_j \\sim N(0, G)`, :math:`\\varepsilon_{ij} \\sim N(0, \\sigma^2)`
    (the random-coefficient model of Raudenbush & Bryk 2002, ch. 2;
    Snijders & Bosker 2012, ch. 5).

    Examples
    --------
    >>> sim = simulate_two_level(10, seed=1)
    >>> list(sim.columns), sim["group"].nunique()
    (['group', 'x', 'y'], 10)
    """
    n_groups = _positive_int(n_groups, "n_groups")
    rng = np.random.default_rng(seed)
    G = np.asarray(G, dtype=float)
    if G.shape != (2, 2) or not np.allclose(G, G.T) or np.linalg.eigvalsh(G).min() < 0:
        raise ValueError(f"G must be a symmetric positive semi-definite 2 x 2 matrix, got {G.tolist()}")
    if size_dist == "poisson":
        sizes = np.maximum(rng.poisson(mean_size, n_groups), 2)
    elif size_dist == "fixed":
        sizes = np.full(n_groups, _positive_int(round(mean_size), "mean_size"))
    else:
        raise ValueError(f"size_dist must be 'poisson' or 'fixed', not {size_dist!r}")
    u = rng.multivariate_normal(np.zeros(2), G, size=n_groups, method="cholesky")
    ids = _ids(n_groups)
    group = np.repeat(np.arange(n_groups), sizes)
    x = rng.normal(0.0, x_sd, size=group.size)
    e = rng.normal(0.0, np.sqrt(sigma2), size=group.size)
    y = gamma[0] + u[group, 0] + (gamma[1] + u[group, 1]) * x + e
    data = pd.DataFrame({"group": np.asarray(ids)[group], "x": x, "y": y})
    data.attrs = {"gamma": list(map(float, gamma)), "G": G.tolist(), "sigma2": float(sigma2),
                  "true_effects": {"group": ids, "n": sizes.tolist(), "u0": u[:, 0].tolist(),
                                   "u1": u[:, 1].tolist()}}
    return data


def true_effects(data: pd.DataFrame) -> pd.DataFrame:
    """The true random effects of data made by :func:`simulate_two_level` or :func:`simulate_random_intercept`.

    Returns
    -------
    DataFrame
        Indexed by group: ``n`` and ``u0`` (and ``u1``), plus the true
        ``intercept`` (and ``slope``) of each group when the generator had them.
    """
    if "true_effects" not in data.attrs:
        raise ValueError("these data carry no true effects (attrs['true_effects'] is missing); "
                         "pandas drops attrs in some operations, so keep the simulated frame itself")
    table = pd.DataFrame(data.attrs["true_effects"]).set_index("group")
    gamma = data.attrs.get("gamma")
    if gamma is not None:
        table["intercept"] = gamma[0] + table["u0"]
        if "u1" in table:
            table["slope"] = gamma[1] + table["u1"]
    return table


# --------------------------------------------------------------------------- clustered x and y
def simulate_clustered(n_groups: int, n_per_group, icc_x: float, icc_y: float, beta: float = 0.0,
                       seed=None) -> pd.DataFrame:
    """A predictor and an outcome that are both clustered (for the SE-inflation study).

    Parameters
    ----------
    n_groups : int
    n_per_group : int or sequence of int
    icc_x : float
        Share of the variance of x between groups (VPC_x), in [0, 1].
    icc_y : float
        Share of the error variance of y between groups (VPC_y), in [0, 1].
    beta : float, default 0
        True slope of y on x (0 for a type-I error study).
    seed : int, None or numpy Generator

    Returns
    -------
    DataFrame
        Columns ``group`` (str), ``x``, ``y``; attrs hold the arguments.

    Notes
    -----
    :math:`x_{ij} = \\sqrt{\\rho_x} a_j + \\sqrt{1-\\rho_x} d_{ij}`,
    :math:`y_{ij} = \\beta x_{ij} + \\sqrt{\\rho_y} u_j + \\sqrt{1-\\rho_y} e_{ij}`,
    all of a, d, u, e independent N(0, 1). OLS of y on x then has true SE
    about ``se_inflation(icc_x, icc_y, n)`` times its reported SE (Moulton
    1986; Cameron & Miller 2015, sec. II).

    Examples
    --------
    >>> simulate_clustered(5, 4, icc_x=0.5, icc_y=0.3, seed=1).shape
    (20, 3)
    """
    for value, name in ((icc_x, "icc_x"), (icc_y, "icc_y")):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    n_groups = _positive_int(n_groups, "n_groups")
    rng = np.random.default_rng(seed)
    sizes = _group_sizes(rng, n_groups, n_per_group)
    group = np.repeat(np.arange(n_groups), sizes)
    a, u = rng.standard_normal(n_groups), rng.standard_normal(n_groups)
    x = np.sqrt(icc_x) * a[group] + np.sqrt(1 - icc_x) * rng.standard_normal(group.size)
    y = beta * x + np.sqrt(icc_y) * u[group] + np.sqrt(1 - icc_y) * rng.standard_normal(group.size)
    data = pd.DataFrame({"group": np.asarray(_ids(n_groups))[group], "x": x, "y": y})
    data.attrs = {"icc_x": float(icc_x), "icc_y": float(icc_y), "beta": float(beta)}
    return data


# --------------------------------------------------------------------------- crossed
def simulate_crossed(n_participants: int, n_stimuli: int, *, intercept: float = 0.0, effect: float = 0.0,
                     participant_sd: float = 1.0, participant_slope_sd: float = 0.5,
                     stimulus_sd: float = 1.0, residual_sd: float = 1.0, seed=None) -> pd.DataFrame:
    """Participants x stimuli with a condition that varies within participants, between stimuli.

    Parameters
    ----------
    n_participants, n_stimuli : int
        Every participant responds once to every stimulus; the first half of
        the stimuli are in condition "A", the rest in "B" (n_stimuli even).
    intercept, effect : float
        Grand mean and the true B - A difference.
    participant_sd, participant_slope_sd : float
        SDs of the participants' random intercepts and condition effects.
    stimulus_sd : float
        SD of the stimuli's random intercepts.
    residual_sd : float
    seed : int, None or numpy Generator

    Returns
    -------
    DataFrame
        Columns ``participant``, ``stimulus`` (str ids "P01", "S01", ...),
        ``condition`` (categorical A/B), ``c`` (-0.5 for A, +0.5 for B), ``y``.

    Notes
    -----
    Judd, Westfall & Kenny (2012):
    :math:`y_{ps} = \\beta_0 + \\beta_1 c_s + \\alpha_p + \\gamma_p c_s + \\eta_s + e_{ps}`.
    Analysing it with participants as the only random factor (ignoring
    :math:`\\eta_s`) inflates the type-I error for the condition effect;
    the matching lmer model is ``y ~ c + (1 + c | participant) + (1 | stimulus)``.

    Examples
    --------
    >>> simulate_crossed(4, 6, seed=1).shape
    (24, 5)
    """
    n_participants = _positive_int(n_participants, "n_participants")
    n_stimuli = _positive_int(n_stimuli, "n_stimuli", minimum=2)
    if n_stimuli % 2:
        raise ValueError(f"n_stimuli must be even (half per condition), got {n_stimuli}")
    rng = np.random.default_rng(seed)
    participant = np.repeat(np.arange(n_participants), n_stimuli)
    stimulus = np.tile(np.arange(n_stimuli), n_participants)
    c = np.where(stimulus < n_stimuli // 2, -0.5, 0.5)
    alpha = rng.normal(0, participant_sd, n_participants)
    gamma = rng.normal(0, participant_slope_sd, n_participants)
    eta = rng.normal(0, stimulus_sd, n_stimuli)
    e = rng.normal(0, residual_sd, participant.size)
    y = intercept + effect * c + alpha[participant] + gamma[participant] * c + eta[stimulus] + e
    data = pd.DataFrame({
        "participant": np.asarray(["P" + i for i in _ids(n_participants)])[participant],
        "stimulus": np.asarray(["S" + i for i in _ids(n_stimuli)])[stimulus],
        "condition": pd.Categorical(np.where(c < 0, "A", "B"), categories=["A", "B"]),
        "c": c, "y": y})
    data.attrs = {"intercept": intercept, "effect": effect, "participant_sd": participant_sd,
                  "participant_slope_sd": participant_slope_sd, "stimulus_sd": stimulus_sd,
                  "residual_sd": residual_sd}
    return data


# --------------------------------------------------------------------------- random intercept
def simulate_random_intercept(n_groups: int, n_per_group, tau2: float, sigma2: float,
                              beta: float | Sequence[float] = 0.0, seed=None) -> pd.DataFrame:
    """Random-intercept model with optional standard-normal covariates.

    Parameters
    ----------
    n_groups : int
    n_per_group : int or sequence of int
        Common group size, or one size per group (unbalanced).
    tau2, sigma2 : float
        Between-group (random intercept) and residual variances.
    beta : float or sequence of float, default 0
        ``beta[0]`` is the intercept; further values are slopes of covariates
        x ~ N(0, 1) named ``x`` (one covariate) or ``x1``, ``x2``, ...
    seed : int, None or numpy Generator

    Returns
    -------
    DataFrame
        Columns ``group`` (str), the covariates, ``y``. ``attrs`` hold the
        arguments, the true ICC tau2 / (tau2 + sigma2) and ``"true_effects"``
        (``u0`` per group; see :func:`true_effects`).

    Notes
    -----
    :math:`y_{ij} = \\beta_0 + \\sum_k \\beta_k x_{kij} + u_j + e_{ij}`,
    :math:`u_j \\sim N(0, \\tau^2)`, :math:`e_{ij} \\sim N(0, \\sigma^2)`.

    Examples
    --------
    >>> sim = simulate_random_intercept(20, 10, tau2=1, sigma2=4, beta=(5, 2), seed=1)
    >>> list(sim.columns), sim.attrs["icc"]
    (['group', 'x', 'y'], 0.2)
    """
    if tau2 < 0 or sigma2 <= 0:
        raise ValueError(f"need tau2 >= 0 and sigma2 > 0, got tau2={tau2}, sigma2={sigma2}")
    n_groups = _positive_int(n_groups, "n_groups")
    beta = np.atleast_1d(np.asarray(beta, dtype=float))
    rng = np.random.default_rng(seed)
    sizes = _group_sizes(rng, n_groups, n_per_group)
    group = np.repeat(np.arange(n_groups), sizes)
    u = rng.normal(0.0, np.sqrt(tau2), n_groups)
    names = ["x"] if len(beta) == 2 else [f"x{k}" for k in range(1, len(beta))]
    x = rng.standard_normal((group.size, len(names)))
    y = beta[0] + x @ beta[1:] + u[group] + rng.normal(0.0, np.sqrt(sigma2), group.size)
    ids = _ids(n_groups)
    data = pd.DataFrame({"group": np.asarray(ids)[group], **dict(zip(names, x.T)), "y": y})
    data.attrs = {"tau2": float(tau2), "sigma2": float(sigma2), "beta": beta.tolist(),
                  "gamma": [float(beta[0])], "icc": float(tau2 / (tau2 + sigma2)),
                  "true_effects": {"group": ids, "n": sizes.tolist(), "u0": u.tolist()}}
    return data


# --------------------------------------------------------------------------- runner
def _settings(params) -> list[dict]:
    """The parameter settings: None -> [{}], list of dicts as given, dict -> product of its lists."""
    if params is None:
        return [{}]
    if isinstance(params, Mapping):
        keys = list(params)
        options = [params[k] if isinstance(params[k], list) else [params[k]] for k in keys]
        return [dict(zip(keys, combo)) for combo in itertools.product(*options)]
    settings = list(params)
    if not settings or not all(isinstance(s, Mapping) for s in settings):
        raise TypeError("params must be None, a dict (lists are varied) or a non-empty list of dicts")
    return [dict(s) for s in settings]


def _rows(output, rep: int, setting: dict) -> list[dict]:
    """A replicate's output as rows carrying the setting and the replicate number."""
    if isinstance(output, pd.DataFrame):
        output = output.to_dict("records")
    elif isinstance(output, Mapping):
        output = [output]
    elif not (isinstance(output, list) and all(isinstance(o, Mapping) for o in output)):
        raise TypeError(f"the simulation function must return a dict, a list of dicts or a DataFrame, "
                        f"not {type(output).__name__}")
    rows = []
    for record in output:
        clash = (set(setting) | {"rep"}) & set(record)
        if clash:
            raise ValueError(f"the simulation function returned key(s) {sorted(clash)} that are also "
                             "parameter names or 'rep'; rename them")
        rows.append({**setting, "rep": rep, **record})
    return rows


def _replicate(func: Callable, seed: np.random.SeedSequence, setting: dict, rep: int) -> list[dict]:
    try:
        output = func(np.random.default_rng(seed), **setting)
    except Exception as error:
        raise RuntimeError(f"replicate {rep} with parameters {setting} failed: "
                           f"{type(error).__name__}: {error}") from error
    return _rows(output, rep, setting)


def _parallel(n_jobs, backend) -> joblib.Parallel:
    """joblib.Parallel yielding results in order as they finish (a list where the backend can't)."""
    try:
        return joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")
    except ValueError:  # e.g. the "multiprocessing" backend has no generator output
        return joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="list")


def run_simulation(func: Callable[..., Any], n_reps: int, *, seed: int, n_jobs: int | None = 1,
                   progress: bool = True, params=None, backend: str | None = None) -> pd.DataFrame:
    """Repeat a simulation with independent, reproducible random streams; stack the results.

    Parameters
    ----------
    func : callable
        ``func(rng, **setting)``: draws data with ``rng`` (a
        ``numpy.random.Generator``), analyses them and returns a dict (one
        row), a list of dicts (several rows, e.g. one per method) or a
        DataFrame. Use only ``rng`` for randomness.
    n_reps : int
        Replicates per setting.
    seed : int
        Root seed. Replicate r gets the generator of
        ``np.random.SeedSequence(seed).spawn(n_reps)[r]``; every setting
        uses the same n_reps streams (common random numbers), so settings
        are compared on the same draws.
    n_jobs : int or None, default 1
        Number of parallel workers (joblib; -1 = all cores; 1 runs here,
        without workers). None takes it from an active
        ``joblib.parallel_config``. Results do not depend on it.
    progress : bool, default True
        Show a tqdm progress bar (``tqdm.auto``: a widget in notebooks).
    params : None, dict or list of dicts
        Settings passed to `func` as keyword arguments. A dict's list values
        are varied (all combinations, first key slowest); other values are
        held fixed (wrap a list-valued argument in a list to hold it fixed).
        A list of dicts gives the settings one by one.
    backend : str, optional
        joblib backend ("loky", "threading", ...). By default the active
        joblib backend is used, so on a Dask cluster::

            from dask.distributed import Client
            client = Client(...)
            with joblib.parallel_config(backend="dask"):
                run_simulation(func, 1000, seed=1, n_jobs=-1)

        runs the replicates on the cluster, unchanged (dask is not needed
        otherwise).

    Returns
    -------
    DataFrame
        One block of rows per setting: the setting's parameters as columns,
        ``rep`` (0, ..., n_reps - 1), then the keys `func` returned.
        ``attrs`` hold ``seed`` and ``n_reps``.

    Notes
    -----
    Independent streams from ``SeedSequence.spawn`` are NumPy's
    recommended way to seed parallel work; because each replicate owns its
    generator, the results are identical for any ``n_jobs`` and backend.
    Morris, White & Crowther (2019) describe how to plan and report
    simulation studies.

    Examples
    --------
    >>> def one(rng, n):
    ...     return {"mean": rng.normal(size=n).mean()}
    >>> out = run_simulation(one, 3, seed=1, progress=False, params={"n": [10, 100]})
    >>> list(out.columns), len(out)
    (['n', 'rep', 'mean'], 6)
    """
    n_reps = _positive_int(n_reps, "n_reps")
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a whole number so that the simulation can be repeated, got {seed!r}")
    if not callable(func):
        raise TypeError(f"func must be a function taking (rng, **params), not {type(func).__name__}")
    streams = np.random.SeedSequence(int(seed)).spawn(n_reps)
    tasks = [(setting, rep) for setting in _settings(params) for rep in range(n_reps)]
    parallel = _parallel(n_jobs, backend)
    results = parallel(joblib.delayed(_replicate)(func, streams[rep], setting, rep) for setting, rep in tasks)
    rows = [row for rows in tqdm(results, total=len(tasks), disable=not progress, desc="replicates")
            for row in rows]
    table = pd.DataFrame(rows)
    table.attrs = {"seed": int(seed), "n_reps": n_reps}
    return table
