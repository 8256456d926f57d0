"""Comparing mixed models: likelihood-ratio tests (boundary-aware) and the parametric bootstrap.

Notes
-----
The likelihood-ratio statistic of nested models m0 within m1 is
chisq = 2 (loglik1 - loglik0), referred to chi2(df) with df the difference in
parameters (lme4's ``anova(m0, m1)``). When m1 adds a variance, the null value
lies on the boundary of the parameter space and chi2(df) is conservative; the
reference is then the 50:50 mixture of chi2(df - 1) and chi2(df) (Self & Liang
1987; Stram & Lee 1994; Snijders & Bosker 2012, section 6.2). The parametric
bootstrap simulates the reference distribution instead (Davison & Hinkley 1997;
pbkrtest's ``PBmodcomp``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from mlmcourse.lmm import LmerResult, LmerWarning, _shape_result
from mlmcourse.simulate import run_simulation

__all__ = ["lrt", "bootstrap_lrt", "parametric_bootstrap", "BootstrapLRT"]

LRT_COLUMNS = ["model", "npar", "aic", "bic", "loglik", "deviance", "chisq", "df", "p_value", "p_value_boundary"]


def _check_pair(m0: LmerResult, m1: LmerResult) -> None:
    for m in (m0, m1):
        if not isinstance(m, LmerResult):
            raise TypeError(f"lrt() compares two lmer() fits, not {type(m).__name__}")
    if m0.response != m1.response or m0.nobs != m1.nobs or not m0.model_data.index.equals(m1.model_data.index):
        raise ValueError(
            f"the models were not fitted to the same rows (response {m0.response!r}, {m0.nobs} rows vs "
            f"response {m1.response!r}, {m1.nobs} rows): likelihoods of different data cannot be compared"
        )


def _same_fixed(m0: LmerResult, m1: LmerResult) -> bool:
    return list(m0.fixef.index) == list(m1.fixef.index)


def _as_comparable(m0: LmerResult, m1: LmerResult, refit: bool) -> tuple[LmerResult, LmerResult]:
    if not (m0.reml or m1.reml):
        return m0, m1
    if refit:
        warnings.warn(
            "refitting the REML fit(s) by maximum likelihood (ML) before comparing, as lme4's anova() does: "
            "REML likelihoods are only comparable between models with the same fixed effects",
            LmerWarning, stacklevel=3,
        )
        return m0.refit_ml(), m1.refit_ml()
    if m0.reml != m1.reml:
        raise ValueError("one model was fitted by REML and the other by ML; fit both the same way or use refit=True")
    if not _same_fixed(m0, m1):
        raise ValueError(
            "the models differ in their fixed effects "
            f"({list(m0.fixef.index)} vs {list(m1.fixef.index)}) and were fitted by REML, whose likelihoods "
            "are not comparable then; use refit=True to refit both by ML"
        )
    return m0, m1


def _variance_terms(m: LmerResult) -> set[tuple[str, str]]:
    return {(block.group, term) for block in m._design.blocks for term in block.coding.names}


def _boundary_p(m0: LmerResult, m1: LmerResult, chisq: float, df: int) -> float:
    """Chi-bar-square p-value when m1 adds exactly one variance (with its covariances) to m0."""
    added = _variance_terms(m1) - _variance_terms(m0)
    if not _same_fixed(m0, m1) or len(added) != 1 or not _variance_terms(m0) < _variance_terms(m1) or df < 1:
        return np.nan
    lower = stats.chi2.sf(chisq, df - 1) if df > 1 else float(chisq <= 0)
    return 0.5 * lower + 0.5 * stats.chi2.sf(chisq, df)


def lrt(m0: LmerResult, m1: LmerResult, *, refit: bool = True) -> pd.DataFrame:
    """Likelihood-ratio test of two nested mixed models, as lme4's ``anova(m0, m1)``.

    Parameters
    ----------
    m0, m1 : LmerResult
        Nested fits to the same rows (the order does not matter; rows are
        sorted by number of parameters, smaller model first).
    refit : bool, default True
        Refit REML fits by maximum likelihood first (lme4's default), with a
        warning. With False, REML fits are compared as they are, which is
        allowed only when their fixed effects are the same.

    Returns
    -------
    pandas.DataFrame
        One row per model; columns model (formula), npar, aic, bic, loglik,
        deviance (-2 loglik), chisq, df, p_value (chi2(df) reference) and
        p_value_boundary (chi-bar-square reference when the larger model adds
        one variance with its covariances, else NaN). The test columns are
        NaN in the first row.

    Raises
    ------
    ValueError
        Different rows or response; REML fits with different fixed effects and
        refit=False.

    Notes
    -----
    chisq = 2 (loglik1 - loglik0) ~ chi2(df). Adding one variance (a random
    intercept or an uncorrelated slope): p = 0.5 P(chi2(1) > chisq). Adding a
    random slope with its covariance to k correlated terms: df = k + 1 and
    p = 0.5 P(chi2(df - 1) > chisq) + 0.5 P(chi2(df) > chisq) (Stram & Lee 1994;
    the likelihood-ratio tests for random slopes in the PSY 356 slides).

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> ss = mlmcourse.load("sleepstudy")
    >>> m0 = lmer("Reaction ~ Days + (1 | Subject)", ss, reml=False)
    >>> m1 = lmer("Reaction ~ Days + (Days | Subject)", ss, reml=False)
    >>> table = lrt(m0, m1)
    >>> int(table["df"].iloc[1]), round(float(table["chisq"].iloc[1]), 2)
    (2, 42.14)
    """
    _check_pair(m0, m1)
    m0, m1 = _as_comparable(m0, m1, bool(refit))
    if m1.df < m0.df:
        m0, m1 = m1, m0
    chisq = max(m0.objective - m1.objective, 0.0)
    df = m1.df - m0.df
    p_value = stats.chi2.sf(chisq, df) if df > 0 else np.nan
    rows = [
        [m.formula, m.df, m.aic, m.bic, m.loglik, m.objective] for m in (m0, m1)
    ]
    rows[0] += [np.nan, np.nan, np.nan, np.nan]
    rows[1] += [chisq, df, p_value, _boundary_p(m0, m1, chisq, df)]
    table = pd.DataFrame(rows, columns=LRT_COLUMNS)
    return table.astype({"npar": int, "df": float})


# ------------------------------------------------------------ the bootstrap
def _replicates(one: Callable, n_boot: int, seed, n_jobs: int, progress: bool) -> pd.DataFrame:
    """Run `one(rng)` (returning a dict) n_boot times through the course's simulation runner."""
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive whole number, not {n_boot!r}")
    table = run_simulation(one, int(n_boot), seed=seed, n_jobs=n_jobs, progress=progress)
    return table.sort_values("rep").drop(columns="rep").reset_index(drop=True)


def _quiet_result(fit: LmerResult, y: np.ndarray) -> LmerResult:
    problem = fit._design.problem.with_response(y)
    frame = fit.model_data.copy()
    frame[fit.response] = y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        engine_fit = problem.fit(reml=fit.reml, start=fit.theta)
        return _shape_result(replace(fit._design, frame=frame, problem=problem), engine_fit, fit.data_name,
                             warn_notes=False)


def _one_statistic(fit: LmerResult, statistic: Callable, rng: np.random.Generator):
    value = statistic(_quiet_result(fit, fit._simulate(rng)))
    return dict(pd.Series(value)) if np.ndim(value) else {"statistic": value}


def parametric_bootstrap(fit: LmerResult, statistic: Callable[[LmerResult], float | pd.Series],
                         n_boot: int, seed: int, *, n_jobs: int = 1, progress: bool = True) -> pd.DataFrame:
    """Parametric bootstrap: simulate responses from a fitted model, refit, collect a statistic.

    Parameters
    ----------
    fit : LmerResult
        The fitted model to simulate from (its estimates are taken as the truth).
    statistic : callable
        Takes the refitted LmerResult and returns a number or a pandas Series
        (e.g. ``lambda m: m.fixef``).
    n_boot : int
        Number of simulated data sets.
    seed : int
        Seed of ``numpy.random.SeedSequence``; replicate i uses the i-th spawned
        child, so results do not depend on `n_jobs`.
    n_jobs : int, default 1
        Parallel workers, as in :func:`mlmcourse.simulate.run_simulation`
        (which runs the replicates).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per replicate; one column per element of the statistic
        (a single column "statistic" for a number).

    Notes
    -----
    Each replicate draws b ~ N(0, G-hat) and e ~ N(0, sigma-hat^2 I) and sets
    y* = X beta-hat + Z b + e (lme4's ``simulate()``/``bootMer(type =
    "parametric")``), then refits the same model by the same criterion.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> boot = parametric_bootstrap(m, lambda r: r.fixef, n_boot=5, seed=1)
    >>> list(boot.columns), len(boot)
    (['(Intercept)', 'Days'], 5)
    """
    if not callable(statistic):
        raise TypeError("statistic must be a function of a fitted model, e.g. lambda m: m.fixef")
    return _replicates(lambda rng: _one_statistic(fit, statistic, rng), n_boot, seed, n_jobs, progress)


@dataclass(frozen=True)
class BootstrapLRT:
    """Result of :func:`bootstrap_lrt`.

    Attributes
    ----------
    statistic : float
        Observed chisq = 2 (loglik1 - loglik0), both by ML.
    df : int
    p_value_chisq : float
        Reference chi2(df), as :func:`lrt`.
    p_value_bootstrap : float
        (1 + number of replicates >= statistic) / (1 + n_boot).
    replicates : numpy.ndarray
        The simulated statistics under m0.
    """

    statistic: float
    df: int
    p_value_chisq: float
    p_value_bootstrap: float
    replicates: np.ndarray

    @property
    def n_boot(self) -> int:
        return len(self.replicates)


def _one_lrt(m0: LmerResult, m1: LmerResult, rng: np.random.Generator) -> dict:
    y = m0._simulate(rng)
    return {"chisq": max(m0._refit(y, reml=False).deviance - m1._refit(y, reml=False).deviance, 0.0)}


def bootstrap_lrt(m0: LmerResult, m1: LmerResult, n_boot: int, seed: int, *, n_jobs: int = 1,
                  progress: bool = True) -> BootstrapLRT:
    """Likelihood-ratio test with a parametric-bootstrap reference distribution (pbkrtest's PBmodcomp).

    Parameters
    ----------
    m0, m1 : LmerResult
        Nested fits to the same rows; REML fits are refitted by ML first.
    n_boot : int
    seed : int
        Seed of ``numpy.random.SeedSequence`` (one spawned child per replicate).
    n_jobs : int, default 1
        Parallel workers, as in :func:`mlmcourse.simulate.run_simulation`
        (which runs the replicates).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    BootstrapLRT

    Notes
    -----
    Responses are simulated from the ML fit of the smaller model; both models
    are refitted by ML to each, and p = (1 + #{chisq* >= chisq}) / (1 + n_boot).
    No boundary correction is needed: the simulation finds the reference.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> ss = mlmcourse.load("sleepstudy")
    >>> m0 = lmer("Reaction ~ Days + (1 | Subject)", ss, reml=False)
    >>> m1 = lmer("Reaction ~ Days + (Days | Subject)", ss, reml=False)
    >>> bootstrap_lrt(m0, m1, n_boot=9, seed=1).p_value_bootstrap
    0.1
    """
    _check_pair(m0, m1)
    if m0.reml or m1.reml:
        warnings.warn("refitting the REML fit(s) by maximum likelihood (ML) for the likelihood-ratio test",
                      LmerWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        small, large = sorted((m.refit_ml() for m in (m0, m1)), key=lambda m: m.df)
    table = lrt(small, large)
    replicates = _replicates(lambda rng: _one_lrt(small, large, rng), n_boot, seed, n_jobs, progress)
    values = replicates["chisq"].to_numpy(dtype=float)
    statistic, df = float(table["chisq"].iloc[1]), int(table["df"].iloc[1])
    p_boot = (1 + np.sum(values >= statistic - 1e-10)) / (1 + len(values))
    return BootstrapLRT(statistic, df, float(table["p_value"].iloc[1]), float(p_boot), values)
