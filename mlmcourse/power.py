"""Power and sample size for two-level designs, by simulation and by formula.

Four questions a study plan has to answer, each in the units a researcher
knows (the intraclass correlation, standardized effects, numbers of groups
and of members per group):

==========================  =================================================================
``"cluster_randomised"``    a treatment given to whole groups (a level-2 predictor)
``"level1"``                a predictor that varies within groups (a level-1 predictor)
``"cross_level"``           a level-2 predictor moderating a random level-1 slope
``"variance"``              the between-group variance itself (H0: tau^2 = 0)
==========================  =================================================================

:func:`power_simulation` draws data from the design, refits the mixed model
with :func:`mlmcourse.lmer`'s engine and counts rejections, through
:func:`mlmcourse.simulate.run_simulation` (seeded, reproducible, optionally
parallel, also on a Dask cluster). :func:`analytic_power` gives the textbook
answer for the same design and test where one exists, and
:func:`budget_designs` lists the designs a budget affords.

The outcome has total variance 1 without predictors: the random intercept
variance is the ICC and the residual variance 1 - ICC. The level-1 predictor
``x`` has mean 0 in every group and variance 1 over the sample; the level-2
predictors (``treatment`` coded 0/1, ``w`` coded -1/+1) are split evenly over
the groups. Effects are therefore standardized mean differences (treatment) or
changes in outcome SDs per SD of the predictor (x, x:w).

Notes
-----
The engine, mixedlm, ships ``powerSim``/``powerCurve`` in the style of R's
simr. They are not used here: they simulate from a fitted model rather than
from a design given in ICC and effect-size units, test with z (no J - 2 df,
no boundary likelihood-ratio test), leave failed refits out of the count,
and run the replicates one after another in one process, seeded from one
generator, so a grid cannot be spread over workers with the same results.
Here each replicate has its own stream (``SeedSequence.spawn``), every refit
is counted, and the test is chosen by the user. A Satterthwaite test fits in
as one more entry of :data:`TESTS` and one more branch of ``_wald``.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlmcourse.lmm import LmerResult, LmerWarning, lmer
from mlmcourse.simulate import run_simulation

__all__ = ["DESIGNS", "TESTS", "PowerWarning", "power_simulation", "power_replicates", "summarise_power",
           "analytic_power", "budget_designs", "optimal_group_size"]

#: The designs and the term each one tests.
DESIGNS = {"cluster_randomised": "treatment", "level1": "x", "cross_level": "x:w", "variance": "tau2"}

#: The tests, by the name used in the argument ``test``, and the label in the output's ``method`` column.
TESTS = {
    "z": "Wald z",
    "t": "Wald t, J-2 df",
    "lrt": "REML LRT, chi-bar-square 50:50",
    "f": "ANOVA F",
}
_DEFAULT_TEST = {"cluster_randomised": "t", "level1": "t", "cross_level": "t", "variance": "lrt"}
_DESIGN_COLUMNS = ["design", "n_groups", "n_per_group", "size_cv", "attrition", "icc", "effect",
                   "slope_variance", "alpha"]
POWER_COLUMNS = [*_DESIGN_COLUMNS, "n_total", "power", "conf_low", "conf_high", "n_reps", "method",
                 "power_analytic", "analytic"]


class PowerWarning(LmerWarning):
    """Something in a power study deserves a look (e.g. fits that did not converge)."""


# ----------------------------------------------------------------------------- the design
@dataclass(frozen=True)
class _Layout:
    """One design point as arrays: who is in which group, and the predictors' values."""

    design: str
    sizes: tuple
    group: np.ndarray  # group index of each row
    x: np.ndarray  # level-1 predictor (within-group centred, SD 1)
    level2: np.ndarray  # per group: treatment (0/1) or w (-1/+1); zeros when unused
    random_slope: bool

    @property
    def n_groups(self) -> int:
        return len(self.sizes)

    def frame(self, y: np.ndarray) -> pd.DataFrame:
        ids = np.array([f"g{j:04d}" for j in range(self.n_groups)])
        data = pd.DataFrame({"group": ids[self.group], "x": self.x, "y": y})
        data["treatment" if self.design == "cluster_randomised" else "w"] = self.level2[self.group]
        return data

    @property
    def formula(self) -> str:
        fixed = {"cluster_randomised": "treatment", "level1": "x", "cross_level": "x * w", "variance": "1"}
        random = "(1 + x | group)" if self.random_slope else "(1 | group)"
        return f"y ~ {fixed[self.design]} + {random}"


@functools.lru_cache(maxsize=256)
def _group_sizes(n_groups: int, n_per_group, size_cv: float, attrition: float) -> tuple:
    """Deterministic group sizes: equal, given, or gamma quantiles with the given CV; then attrition."""
    if np.ndim(n_per_group):
        sizes = np.asarray(n_per_group, dtype=float)
    elif size_cv > 0:
        shape = 1 / size_cv**2
        quantiles = (np.arange(n_groups) + 0.5) / n_groups
        sizes = stats.gamma.ppf(quantiles, shape, scale=n_per_group / shape)
    else:
        sizes = np.full(n_groups, float(n_per_group))
    sizes = np.maximum(np.round(sizes * (1 - attrition)), 1).astype(int)
    if sizes.sum() <= n_groups + 2:
        raise ValueError(f"the design leaves {sizes.sum()} people in {n_groups} groups after attrition "
                         f"{attrition}: too few to fit a mixed model; raise n_per_group")
    return tuple(int(s) for s in sizes)


def _centred_x(sizes: tuple) -> np.ndarray:
    """A level-1 predictor with mean 0 in every group and variance 1 overall (fixed across replicates)."""
    rng = np.random.default_rng(20260101)
    x = np.concatenate([rng.standard_normal(n) for n in sizes])
    group = np.repeat(np.arange(len(sizes)), sizes)
    x = x - (np.bincount(group, x) / np.asarray(sizes))[group]
    scale = np.sqrt(np.mean(x**2))
    return x / scale if scale > 0 else x


def _level2(design: str, sizes: tuple) -> np.ndarray:
    """Half of the groups get treatment 1 (or w = +1), alternating down the size order."""
    order = np.argsort(-np.asarray(sizes), kind="stable")
    flag = np.zeros(len(sizes))
    flag[order[1::2]] = 1.0
    if design == "cross_level":
        return 2 * flag - 1
    return flag if design == "cluster_randomised" else np.zeros(len(sizes))


@functools.lru_cache(maxsize=64)
def _layout(design: str, sizes: tuple, random_slope: bool) -> _Layout:
    group = np.repeat(np.arange(len(sizes)), sizes)
    return _Layout(design, sizes, group, _centred_x(sizes), _level2(design, sizes), random_slope)


def _true_coefficients(layout: _Layout, effect: float) -> dict:
    return {"cluster_randomised": {"treatment": effect}, "level1": {"x": effect},
            "cross_level": {"x:w": effect}, "variance": {}}[layout.design]


def _draw(layout: _Layout, rng: np.random.Generator, icc: float, effect: float, slope_variance: float) -> np.ndarray:
    """y = fixed part + u0_j + u1_j x + e, total variance 1 without predictors."""
    J = layout.n_groups
    u0 = rng.normal(0.0, np.sqrt(icc), J)
    u1 = rng.normal(0.0, np.sqrt(slope_variance), J) if slope_variance > 0 else np.zeros(J)
    e = rng.normal(0.0, np.sqrt(1 - icc), len(layout.group))
    g = layout.group
    fixed = {"cluster_randomised": effect * layout.level2[g], "level1": effect * layout.x,
             "cross_level": effect * layout.x * layout.level2[g], "variance": np.zeros(len(g))}[layout.design]
    return fixed + u0[g] + u1[g] * layout.x + e


# ----------------------------------------------------------------------------- refitting
class _Refitter:
    """The template fit of a design, refitted to new responses.

    Replicates are refitted on the template's design (``LmerResult.design``,
    lme4's stages) with only the response changed: the engine's fit, without
    building a full result each time.
    """

    def __init__(self, template: LmerResult):
        self.template = template
        self.terms = list(template.fixef.index)
        self.n_theta = len(template.theta)

    def fit(self, y: np.ndarray):
        """An engine fit (beta, vcov_beta, deviance, theta, converged) of the same model to `y`."""
        problem = self.template.design.problem.with_response(y)
        return problem.fit(reml=self.template.reml, start=self.template.theta)

    def null_objective(self, y: np.ndarray) -> float:
        """The same criterion (REML) at tau = 0: the model without the random part."""
        problem = self.template.design.problem.with_response(y)
        return problem.deviance(np.zeros(self.n_theta), reml=self.template.reml)


@functools.lru_cache(maxsize=64)
def _refitter(design: str, sizes: tuple, random_slope: bool, icc: float) -> _Refitter:
    """Fit the design once (to data drawn with a fixed seed) so that replicates only refit."""
    layout = _layout(design, sizes, random_slope)
    y = _draw(layout, np.random.default_rng(1), max(icc, 0.05), 0.0, 0.05 if random_slope else 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        return _Refitter(lmer(layout.formula, layout.frame(y)))


# ----------------------------------------------------------------------------- tests
def _wald(fit, refitter: _Refitter, term: str, test: str, n_groups: int) -> dict:
    k = refitter.terms.index(term)
    estimate, std_error = fit.beta[k], np.sqrt(fit.vcov_beta[k, k])
    statistic = estimate / std_error
    if test == "z":
        p_value = 2 * stats.norm.sf(abs(statistic))
    else:
        p_value = 2 * stats.t.sf(abs(statistic), n_groups - 2)
    return {"estimate": estimate, "std_error": std_error, "statistic": statistic, "p_value": p_value}


def _anova_f(layout: _Layout, y: np.ndarray) -> dict:
    """One-way ANOVA F test of the group means (Fisher); exact for balanced random-intercept data."""
    sizes = np.asarray(layout.sizes)
    means = np.bincount(layout.group, y) / sizes
    between = np.sum(sizes * (means - y.mean()) ** 2) / (len(sizes) - 1)
    within = np.sum((y - means[layout.group]) ** 2) / (len(y) - len(sizes))
    statistic = between / within
    p_value = stats.f.sf(statistic, len(sizes) - 1, len(y) - len(sizes))
    return {"estimate": np.nan, "std_error": np.nan, "statistic": statistic, "p_value": p_value}


def _boundary_lrt(refitter: _Refitter, fit, y: np.ndarray) -> dict:
    """REML LRT of tau^2 = 0; p from the 50:50 mixture of chi2(0) and chi2(1) (Self & Liang 1987)."""
    statistic = max(refitter.null_objective(y) - fit.deviance, 0.0)
    p_value = 0.5 * stats.chi2.sf(statistic, 1) if statistic > 0 else 1.0
    tau2 = (fit.sigma * fit.theta[0]) ** 2
    return {"estimate": tau2, "std_error": np.nan, "statistic": statistic, "p_value": p_value}


def _one_replicate(rng: np.random.Generator, *, design: str, n_groups: int, n_per_group, size_cv: float,
                   attrition: float, icc: float, effect: float, slope_variance: float, alpha: float,
                   method: str) -> dict:
    """Draw one data set of the design, refit, test with `method` (a key of TESTS); one row of results."""
    test = method
    random_slope = slope_variance > 0
    layout = _layout(design, _group_sizes(n_groups, n_per_group, size_cv, attrition), random_slope)
    y = _draw(layout, rng, icc, effect, slope_variance)
    if test == "f":
        row, converged = _anova_f(layout, y), True
    else:
        refitter = _refitter(design, layout.sizes, random_slope, icc)
        fit = refitter.fit(y)
        converged = bool(fit.converged)
        if test == "lrt":
            row = _boundary_lrt(refitter, fit, y)
        else:
            row = _wald(fit, refitter, DESIGNS[design], test, layout.n_groups)
    return {**row, "converged": converged, "reject": bool(row["p_value"] < alpha)}


# ----------------------------------------------------------------------------- formulas
def _gls_variance(columns: np.ndarray, variances: np.ndarray, k: int) -> float:
    """Variance of coefficient k of a weighted regression of group estimates with known variances."""
    weighted = columns.T @ (columns / variances[:, None])
    return float(np.linalg.inv(weighted)[k, k])


def _analytic_terms(layout: _Layout, icc: float, slope_variance: float) -> tuple[float, float]:
    """Standard error of the tested effect with known variances, and the df of its t statistic."""
    J, N = layout.n_groups, len(layout.group)
    sizes = np.asarray(layout.sizes, dtype=float)
    ones = np.ones((J, 1))
    if layout.design == "cluster_randomised":
        variances = icc + (1 - icc) / sizes
        return np.sqrt(_gls_variance(np.hstack([ones, layout.level2[:, None]]), variances, 1)), J - 2
    sxx = np.bincount(layout.group, layout.x**2)
    variances = slope_variance + (1 - icc) / sxx
    if layout.design == "level1":
        return np.sqrt(_gls_variance(ones, variances, 0)), (J - 1 if slope_variance > 0 else N - J - 1)
    return np.sqrt(_gls_variance(np.hstack([ones, layout.level2[:, None]]), variances, 1)), J - 2


def _wald_power(effect: float, std_error: float, stat_df: float, test: str, n_groups: int, alpha: float) -> float:
    """P(|T| > critical value) for T ~ noncentral t(stat_df, effect / std_error)."""
    crit = stats.norm.isf(alpha / 2) if test == "z" else stats.t.isf(alpha / 2, n_groups - 2)
    ncp = effect / std_error
    return float(stats.nct.sf(crit, stat_df, ncp) + stats.nct.cdf(-crit, stat_df, ncp))


_FORMULAS = {
    "cluster_randomised": "Raudenbush (1997): noncentral t, J-2 df",
    "level1": "Snijders & Bosker: GLS variance, noncentral t",
    "cross_level": "Snijders & Bosker: GLS variance, noncentral t, J-2 df",
    "variance": "ANOVA F with (J-1, N-J) df (balanced groups)",
}


def _normal_power(design: str, sizes: tuple, icc: float, effect: float, slope_variance: float,
                  alpha: float) -> float:
    """The same standard error judged by the normal distribution: the design-effect approximation."""
    if design == "variance":
        return np.nan
    std_error, _ = _analytic_terms(_layout(design, sizes, slope_variance > 0), icc, slope_variance)
    crit, ncp = stats.norm.isf(alpha / 2), abs(effect) / std_error
    return float(stats.norm.sf(crit - ncp) + stats.norm.cdf(-crit - ncp))


def _analytic_one(design: str, sizes: tuple, icc: float, effect: float, slope_variance: float,
                  test: str, alpha: float) -> tuple[float, str]:
    """(power, method) of the formula for the design and test; (NaN, "") where none exists."""
    layout = _layout(design, sizes, slope_variance > 0)
    if design == "variance":
        if test != "f" or len(set(sizes)) > 1:
            return np.nan, ""
        J, n = len(sizes), sizes[0]
        crit = stats.f.isf(alpha, J - 1, J * n - J)
        ratio = 1 + n * icc / (1 - icc)
        return float(stats.f.sf(crit / ratio, J - 1, J * n - J)), _FORMULAS[design]
    std_error, stat_df = _analytic_terms(layout, icc, slope_variance)
    return _wald_power(effect, std_error, stat_df, test, len(sizes), alpha), _FORMULAS[design]


# ----------------------------------------------------------------------------- the grid
def _as_options(value, name: str) -> list:
    """A list is varied; anything else (including a tuple of group sizes) is one option."""
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{name} is an empty list; give at least one value")
        return value
    return [value]


def _check_number(value, name: str, low: float, high: float, *, low_open=False, high_open=True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not np.isfinite(value) or too_low or too_high:
        brackets = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
        raise ValueError(f"{name} must be in {brackets}, got {value!r}")
    return float(value)


def _check_sizes(n_groups, n_per_group) -> tuple[int, object]:
    if isinstance(n_per_group, tuple):
        if n_groups is not None and n_groups != len(n_per_group):
            raise ValueError(f"n_per_group gives {len(n_per_group)} group sizes but n_groups is {n_groups}")
        if any(isinstance(n, bool) or int(n) != n or n < 1 for n in n_per_group):
            raise ValueError(f"every group size in n_per_group must be a whole number of at least 1, "
                             f"got {n_per_group}")
        n_groups, n_per_group = len(n_per_group), tuple(int(n) for n in n_per_group)
    elif isinstance(n_per_group, bool) or not isinstance(n_per_group, (int, np.integer)) or n_per_group < 2:
        raise ValueError(f"n_per_group must be a whole number of at least 2 (or a tuple with one size per "
                         f"group), got {n_per_group!r}")
    if isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)) or n_groups < 4:
        raise ValueError(f"n_groups must be a whole number of at least 4 (two groups per arm and J-2 df), "
                         f"got {n_groups!r}")
    return int(n_groups), n_per_group


def _check_point(point: dict) -> dict:
    """Validate one design point; return it with the test code (``method``) filled in."""
    design = point["design"]
    if design not in DESIGNS:
        raise ValueError(f"design {design!r} is not one of {list(DESIGNS)}")
    point["n_groups"], point["n_per_group"] = _check_sizes(point["n_groups"], point["n_per_group"])
    point["icc"] = _check_number(point["icc"], "icc", 0, 1, low_open=design != "variance")
    point["effect"] = _check_number(point["effect"], "effect", -1e6, 1e6)
    point["slope_variance"] = _check_number(point["slope_variance"], "slope_variance", 0, 1e6)
    point["size_cv"] = _check_number(point["size_cv"], "size_cv", 0, 5)
    point["attrition"] = _check_number(point["attrition"], "attrition", 0, 1)
    point["alpha"] = _check_number(point["alpha"], "alpha", 0, 1, low_open=True)
    test = point["method"] or _DEFAULT_TEST[design]
    allowed = ["lrt", "f"] if design == "variance" else ["z", "t"]
    if test not in allowed:
        raise ValueError(f"test {test!r} does not apply to design {design!r}; choose one of {allowed}")
    if design == "variance" and point["slope_variance"] > 0:
        raise ValueError("the 'variance' design tests a random intercept only; set slope_variance=0")
    point["method"] = test
    _group_sizes(point["n_groups"], point["n_per_group"], point["size_cv"], point["attrition"])
    return point


def _grid(design, **arguments) -> list[dict]:
    names = ["design", *arguments]
    options = [_as_options(design, "design")] + [_as_options(v, k) for k, v in arguments.items()]
    return [_check_point(dict(zip(names, combo))) for combo in itertools.product(*options)]


def _grid_arguments(n_groups, n_per_group, icc, effect, slope_variance, size_cv, attrition, alpha, test) -> dict:
    return {"n_groups": n_groups, "n_per_group": n_per_group, "size_cv": size_cv, "attrition": attrition,
            "icc": icc, "effect": effect, "slope_variance": slope_variance, "alpha": alpha, "method": test}


# ----------------------------------------------------------------------------- public
def power_replicates(design, *, n_groups=None, n_per_group, icc, effect=0.0, slope_variance=0.0, size_cv=0.0,
                     attrition=0.0, alpha=0.05, test=None, n_reps: int = 200, seed: int, n_jobs: int | None = 1,
                     progress: bool = True, backend: str | None = None) -> pd.DataFrame:
    """Every simulated data set of a power study: one row per design point and replicate.

    Takes the arguments of :func:`power_simulation`. Returns the design
    columns, ``method`` (the code of the test, a key of :data:`TESTS`), ``rep`` and per replicate ``estimate``,
    ``std_error``, ``statistic``, ``p_value``, ``converged``, ``reject``.

    Examples
    --------
    >>> reps = power_replicates("cluster_randomised", n_groups=10, n_per_group=5, icc=0.1,
    ...                         effect=0.5, n_reps=3, seed=1, progress=False)
    >>> len(reps), list(reps.columns[-6:])
    (3, ['estimate', 'std_error', 'statistic', 'p_value', 'converged', 'reject'])
    """
    points = _grid(design, **_grid_arguments(n_groups, n_per_group, icc, effect, slope_variance, size_cv,
                                             attrition, alpha, test))
    return run_simulation(_one_replicate, n_reps, seed=seed, n_jobs=n_jobs, progress=progress, params=points,
                          backend=backend)


def _clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    tail = (1 - level) / 2
    low = stats.beta.ppf(tail, successes, trials - successes + 1) if successes > 0 else 0.0
    high = stats.beta.isf(tail, successes + 1, trials - successes) if successes < trials else 1.0
    return float(low), float(high)


def _summary_row(point: dict, block: pd.DataFrame) -> dict:
    successes, trials = int(block["reject"].sum()), len(block)
    low, high = _clopper_pearson(successes, trials)
    sizes = _group_sizes(point["n_groups"], point["n_per_group"], point["size_cv"], point["attrition"])
    analytic, source = _analytic_one(point["design"], sizes, point["icc"], point["effect"],
                                     point["slope_variance"], point["method"], point["alpha"])
    return {**point, "n_total": int(sum(sizes)), "power": successes / trials, "conf_low": low, "conf_high": high,
            "n_reps": trials, "method": TESTS[point["method"]], "power_analytic": analytic, "analytic": source}


def summarise_power(replicates: pd.DataFrame) -> pd.DataFrame:
    """Power per design point from :func:`power_replicates`, with exact (Clopper-Pearson) 95% intervals.

    Returns
    -------
    DataFrame
        Columns ``design, n_groups, n_per_group, size_cv, attrition, icc,
        effect, slope_variance, alpha, n_total, power, conf_low, conf_high,
        n_reps, method, power_analytic, analytic`` (``method`` is the test
        used, a label of :data:`TESTS`; then the formula's power for the
        same test, NaN where there is none, and its source).

    Warns
    -----
    PowerWarning
        When some refits did not converge (they still count, as a failure to reject if p is NaN).
    """
    keys = [*_DESIGN_COLUMNS, "method"]
    missing = [k for k in [*keys, "reject", "converged"] if k not in replicates]
    if missing:
        raise ValueError(f"these are not power_replicates() results: columns {missing} are missing")
    failed = int((~replicates["converged"].astype(bool)).sum())
    if failed:
        warnings.warn(f"{failed} of {len(replicates)} refits did not converge; their tests are counted as they "
                      "came out", PowerWarning, stacklevel=2)
    rows = [_summary_row(dict(zip(keys, point)), block)
            for point, block in replicates.groupby(keys, sort=False, dropna=False)]
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


def power_simulation(design, *, n_groups=None, n_per_group, icc, effect=0.0, slope_variance=0.0, size_cv=0.0,
                     attrition=0.0, alpha=0.05, test=None, n_reps: int = 200, seed: int, n_jobs: int | None = 1,
                     progress: bool = True, backend: str | None = None) -> pd.DataFrame:
    """Power of a two-level design by simulation: draw, refit the mixed model, test, count.

    Every argument that is a list is varied (all combinations); the others
    are held fixed.

    Parameters
    ----------
    design : {"cluster_randomised", "level1", "cross_level", "variance"}
        What is tested (see :data:`DESIGNS`): the treatment of whole groups,
        a level-1 slope, the cross-level interaction x:w, or tau^2 > 0.
    n_groups : int
        Number of groups J (at least 4). May be omitted when `n_per_group`
        is a tuple of sizes.
    n_per_group : int or tuple of int
        Members per group before attrition, or a tuple with one size per group.
    icc : float
        Intraclass correlation of the outcome, tau0^2 / (tau0^2 + sigma^2);
        for ``"variance"`` the ICC under the alternative (0 gives the type-I error).
    effect : float, default 0
        Standardized effect: treatment minus control in outcome SDs, or
        outcome SDs per SD of x (level 1) or per SD of x and w (cross level).
    slope_variance : float, default 0
        Variance of the random slope of x, in squared outcome SDs; with 0 the
        model has a random intercept only.
    size_cv : float, default 0
        Coefficient of variation of the group sizes (0: equal sizes). The
        sizes are fixed quantiles of a gamma distribution with mean
        `n_per_group`, the same in every replicate.
    attrition : float, default 0
        Share of each group's members lost (the expected loss when people
        drop out at random).
    alpha : float, default 0.05
        Two-sided level of the test.
    test : {None, "t", "z", "lrt", "f"}
        How the effect is tested (:data:`TESTS`): ``"t"`` the Wald t from the
        mixed model with J - 2 df, ``"z"`` the same ratio against the normal
        (lme4 without lmerTest); for ``"variance"``, ``"lrt"`` the REML
        likelihood-ratio test with the chi-bar-square reference or ``"f"``
        the one-way ANOVA F test. None picks "t" (or "lrt").
    n_reps : int, default 200
        Simulated data sets per design point.
    seed : int
        Root seed; every design point uses the same n_reps random streams.
    n_jobs, progress, backend
        Passed to :func:`mlmcourse.simulate.run_simulation` (parallel
        workers, progress bar, joblib backend such as ``"dask"``). The results
        do not depend on them.

    Returns
    -------
    DataFrame
        One row per design point: ``design, n_groups, n_per_group, size_cv,
        attrition, icc, effect, slope_variance, alpha, n_total, power,
        conf_low, conf_high, n_reps, method, power_analytic, analytic``
        (``method``: the test used, a label of :data:`TESTS`).
        ``conf_low``/``conf_high`` are the exact 95% Monte-Carlo interval;
        ``power_analytic`` is the formula for the same test where one exists.

    Raises
    ------
    ValueError, TypeError
        A value out of range, naming the argument (e.g. an ICC of 1).

    Notes
    -----
    The model fitted is ``y ~ treatment + (1 | group)``, ``y ~ x + (1 | group)``
    (``(1 + x | group)`` with a slope variance), ``y ~ x * w + (1 + x | group)``
    or ``y ~ 1 + (1 | group)``, by REML. Each design point is fitted once and
    then refitted to every simulated response. The formulas: Raudenbush
    (1997) for cluster-randomised trials; Snijders (2005) and Snijders &
    Bosker (2012, ch. 11) for level-1 and cross-level effects (the GLS
    variance with known variance components); the ANOVA F distribution for
    tau^2 (Scheffe 1959).

    Examples
    --------
    >>> table = power_simulation("cluster_randomised", n_groups=[10, 20], n_per_group=10, icc=0.1,
    ...                          effect=0.5, n_reps=20, seed=1, progress=False)
    >>> table[["n_groups", "n_reps", "method"]].values.tolist()
    [[10, 20, 'Wald t, J-2 df'], [20, 20, 'Wald t, J-2 df']]
    """
    return summarise_power(power_replicates(
        design, n_groups=n_groups, n_per_group=n_per_group, icc=icc, effect=effect, slope_variance=slope_variance,
        size_cv=size_cv, attrition=attrition, alpha=alpha, test=test, n_reps=n_reps, seed=seed, n_jobs=n_jobs,
        progress=progress, backend=backend))


def analytic_power(design, *, n_groups=None, n_per_group, icc, effect=0.0, slope_variance=0.0, size_cv=0.0,
                   attrition=0.0, alpha=0.05, test=None) -> pd.DataFrame:
    """Power from the formulas, for the same designs and tests as :func:`power_simulation` (instant).

    Returns
    -------
    DataFrame
        Columns ``design, n_groups, n_per_group, size_cv, attrition, icc,
        effect, slope_variance, alpha, n_total, power, method, analytic,
        power_normal`` (``method``: the test, a label of :data:`TESTS`); power is NaN where no formula exists (the boundary
        LRT, unequal groups for the F test). ``power_normal`` judges the same
        standard error by the normal distribution: for a cluster-randomised
        trial this is the design-effect approximation (Kish 1965) that Stata's
        ``power twomeans, cluster`` uses, optimistic when groups are few.

    Notes
    -----
    Cluster-randomised trial (Raudenbush 1997): with P = 1/2 of J groups
    treated, equal sizes n, the effect's variance is
    4 (rho + (1 - rho)/n) / J and t = estimate / SE follows a noncentral t
    with J - 2 df and noncentrality delta / SE. Unequal sizes use the GLS
    variance of the group means. Level-1 and cross-level effects use the
    GLS variance of the groups' slopes, tau1^2 + sigma^2 / S_xx,j
    (Snijders & Bosker 2012).

    Examples
    --------
    >>> table = analytic_power("cluster_randomised", n_groups=40, n_per_group=20, icc=0.1, effect=0.4)
    >>> round(float(table["power"].iloc[0]), 3)
    0.899
    """
    points = _grid(design, **_grid_arguments(n_groups, n_per_group, icc, effect, slope_variance, size_cv,
                                             attrition, alpha, test))
    rows = []
    for point in points:
        sizes = _group_sizes(point["n_groups"], point["n_per_group"], point["size_cv"], point["attrition"])
        power, source = _analytic_one(point["design"], sizes, point["icc"], point["effect"],
                                      point["slope_variance"], point["method"], point["alpha"])
        normal = _normal_power(point["design"], sizes, point["icc"], point["effect"], point["slope_variance"],
                               point["alpha"])
        rows.append({**point, "n_total": int(sum(sizes)), "power": power, "method": TESTS[point["method"]],
                     "analytic": source, "power_normal": normal})
    return pd.DataFrame(rows, columns=[*_DESIGN_COLUMNS, "n_total", "power", "method", "analytic", "power_normal"])


def optimal_group_size(icc: float, cost_group: float, cost_person: float) -> float:
    """The group size that minimizes the treatment effect's variance for a fixed budget.

    Notes
    -----
    Raudenbush (1997, eq. 13): n* = sqrt((c2 / c1) (1 - rho) / rho), with c2
    the cost of recruiting a group and c1 the cost of one more member.

    Examples
    --------
    >>> round(optimal_group_size(0.1, cost_group=300, cost_person=10), 2)
    16.43
    """
    icc = _check_number(icc, "icc", 0, 1, low_open=True)
    cost_group = _check_number(cost_group, "cost_group", 0, np.inf, low_open=True)
    cost_person = _check_number(cost_person, "cost_person", 0, np.inf, low_open=True)
    return float(np.sqrt(cost_group / cost_person * (1 - icc) / icc))


def budget_designs(budget: float, cost_group: float, cost_person: float, n_per_group) -> pd.DataFrame:
    """The number of groups a budget buys for each group size (rounded down to an even number).

    Returns
    -------
    DataFrame
        Columns ``n_per_group, n_groups, cost`` (groups of that size cost
        ``cost_group + n_per_group * cost_person`` each); sizes that buy fewer
        than 4 groups are dropped.

    Examples
    --------
    >>> table = budget_designs(20000, cost_group=300, cost_person=10, n_per_group=[10, 40])
    >>> table["n_groups"].tolist(), table["cost"].tolist()
    ([50, 28], [20000.0, 19600.0])
    """
    budget = _check_number(budget, "budget", 0, np.inf, low_open=True)
    cost_group = _check_number(cost_group, "cost_group", 0, np.inf)
    cost_person = _check_number(cost_person, "cost_person", 0, np.inf, low_open=True)
    per_group = [cost_group + n * cost_person for n in n_per_group]
    rows = [(int(n), int(budget // c) // 2 * 2) for n, c in zip(n_per_group, per_group)]
    table = pd.DataFrame(rows, columns=["n_per_group", "n_groups"])
    table["cost"] = table["n_groups"] * (cost_group + table["n_per_group"] * cost_person)
    return table[table["n_groups"] >= 4].reset_index(drop=True)
