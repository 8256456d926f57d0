"""Tests that compare fits: likelihood-ratio tests (boundary-aware), the parametric bootstrap, Hausman.

Every test speaks the package's vocabulary: a single test has a ``test``
table of one row with columns ``method, statistic, df, p_value`` (plus
documented extras); :func:`lrt` keeps lme4's ``anova(m0, m1)`` layout, one
row per model. Each test first checks that its fits can be compared (same
response values on the same rows, nested models, the right kind of fit) and
says what differs when they cannot.

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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlmcourse._messages import MlmWarning, require_type
from mlmcourse.estimators import EstimatorResult, RandomEffectsGLSResult
from mlmcourse.lmm import LmerResult, LmerWarning
from mlmcourse.simulate import run_simulation

__all__ = ["lrt", "bootstrap_lrt", "parametric_bootstrap", "hausman", "BootstrapLRT", "HausmanResult",
           "LRT_COLUMNS", "TEST_COLUMNS"]

#: Columns of lrt(): lme4's anova(m0, m1), one row per model.
LRT_COLUMNS = ["model", "npar", "aic", "bic", "loglik", "deviance", "statistic", "df", "p_value",
               "p_value_boundary"]
#: The first columns of every single test's one-row table.
TEST_COLUMNS = ["method", "statistic", "df", "p_value"]
NESTING_TOLERANCE = 1e-7


def _check_pair(m0: LmerResult, m1: LmerResult, what: str = "lrt()") -> None:
    """Same response values on the same rows, and nested fixed and random parts."""
    for name, m in (("m0", m0), ("m1", m1)):
        require_type(m, LmerResult, f"{what}: {name}", "mlmcourse.lmer()")
    difference = m0.fingerprint.difference(m1.fingerprint)
    if difference:
        raise ValueError(f"{what} compares fits to the same data, but {difference}: likelihoods of different "
                         "data cannot be compared")
    small, large = sorted((m0, m1), key=lambda m: m.df)
    _check_nested(small, large, what)


def _outside_span(small: LmerResult, large: LmerResult) -> list[str]:
    """Columns of the smaller model's X that are not linear combinations of the larger model's X."""
    X0, X1 = small.design.X, large.design.X[small.fingerprint.row_order(large.fingerprint)]
    if X1.shape[1] == 0:
        return list(small.fixef.index)
    basis = np.linalg.qr(X1)[0]
    residual = X0 - basis @ (basis.T @ X0)
    scale = np.maximum(np.linalg.norm(X0, axis=0), np.finfo(float).tiny)
    return [n for n, r, c in zip(small.fixef.index, np.linalg.norm(residual, axis=0), scale)
            if r > NESTING_TOLERANCE * c]


def _check_nested(small: LmerResult, large: LmerResult, what: str) -> None:
    outside = _outside_span(small, large)
    if outside:
        raise ValueError(
            f"{what} needs nested models, but the fixed part of {small.formula!r} has {outside}, which "
            f"{large.formula!r} cannot express: the models are not nested")
    missing = sorted(_variance_terms(small) - _variance_terms(large))
    if missing:
        named = ", ".join(f"{term} | {group}" for group, term in missing)
        raise ValueError(
            f"{what} needs nested models, but the random part of {small.formula!r} has ({named}), which "
            f"{large.formula!r} does not have: the models are not nested")


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
    return {(block.group, term) for block in m.design.blocks for term in block.coding.names}


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
        deviance (-2 loglik), statistic (the likelihood-ratio chi-squared),
        df, p_value (chi2(df) reference) and p_value_boundary (chi-bar-square
        reference when the larger model adds one variance with its
        covariances, else NaN). The test columns are NaN in the first row.

    Raises
    ------
    TypeError
        A model that is not an lmer() fit.
    ValueError
        Different response, rows or response values; models that are not
        nested (a fixed column or a random term of the smaller model missing
        from the larger); REML fits with different fixed effects and
        refit=False.

    Notes
    -----
    statistic = 2 (loglik1 - loglik0) ~ chi2(df). Adding one variance (a random
    intercept or an uncorrelated slope): p = 0.5 P(chi2(1) > chisq). Adding a
    random slope with its covariance to k correlated terms: df = k + 1 and
    p = 0.5 P(chi2(df - 1) > chisq) + 0.5 P(chi2(df) > chisq) (Stram & Lee 1994;
    Snijders & Bosker 2012, sec. 6.2).

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> ss = mlmcourse.load("sleepstudy")
    >>> m0 = lmer("Reaction ~ Days + (1 | Subject)", ss, reml=False)
    >>> m1 = lmer("Reaction ~ Days + (Days | Subject)", ss, reml=False)
    >>> table = lrt(m0, m1)
    >>> int(table["df"].iloc[1]), round(float(table["statistic"].iloc[1]), 2)
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


def _quiet_refit(fit: LmerResult, y: np.ndarray, reml: bool | None = None) -> LmerResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MlmWarning)
        return fit.refit(y, reml=reml)


def _simulated(fit: LmerResult, rng: np.random.Generator) -> np.ndarray:
    return fit.simulate(rng)["sim_1"].to_numpy()


def _one_statistic(fit: LmerResult, statistic: Callable, rng: np.random.Generator):
    value = statistic(_quiet_refit(fit, _simulated(fit, rng)))
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
    require_type(fit, LmerResult, "fit", "mlmcourse.lmer()")
    if not callable(statistic):
        raise TypeError("statistic must be a function of a fitted model, e.g. lambda m: m.fixef")
    return _replicates(lambda rng: _one_statistic(fit, statistic, rng), n_boot, seed, n_jobs, progress)


@dataclass(frozen=True, eq=False)
class BootstrapLRT:
    """Result of :func:`bootstrap_lrt`.

    Attributes
    ----------
    statistic : float
        Observed likelihood-ratio statistic 2 (loglik1 - loglik0), both by ML.
    df : int
        Difference in the number of parameters.
    p_value : float
        Bootstrap p-value, (1 + number of replicates >= statistic) / (1 + n_boot).
    p_value_chisq : float
        The chi2(df) p-value of the same statistic, as :func:`lrt`.
    replicates : numpy.ndarray
        The simulated statistics under m0.
    """

    statistic: float
    df: int
    p_value: float
    p_value_chisq: float
    replicates: np.ndarray

    @property
    def n_boot(self) -> int:
        return len(self.replicates)

    @property
    def test(self) -> pd.DataFrame:
        """One row: method, statistic, df, p_value, p_value_chisq, n_boot."""
        return pd.DataFrame([{"method": "parametric bootstrap likelihood-ratio test", "statistic": self.statistic,
                              "df": float(self.df), "p_value": self.p_value, "p_value_chisq": self.p_value_chisq,
                              "n_boot": self.n_boot}])

    def __repr__(self) -> str:
        return (f"<BootstrapLRT: statistic={self.statistic:.4f}, df={self.df}, p_value={self.p_value:.4g} "
                f"({self.n_boot} replicates), p_value_chisq={self.p_value_chisq:.4g}>")


def _one_lrt(m0: LmerResult, m1: LmerResult, rng: np.random.Generator) -> dict:
    y = _simulated(m0, rng)
    return {"statistic": max(_quiet_refit(m0, y, False).objective - _quiet_refit(m1, y, False).objective, 0.0)}


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
        ``statistic``, ``df``, ``p_value`` (bootstrap), ``p_value_chisq``,
        ``replicates``; ``test`` gives them as a one-row table.

    Raises
    ------
    TypeError, ValueError
        As :func:`lrt`: fits that are not lmer() fits, to different data, or
        not nested.

    Notes
    -----
    Responses are simulated from the ML fit of the smaller model; both models
    are refitted by ML to each, and p = (1 + #{LR* >= LR}) / (1 + n_boot).
    No boundary correction is needed: the simulation finds the reference.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> ss = mlmcourse.load("sleepstudy")
    >>> m0 = lmer("Reaction ~ Days + (1 | Subject)", ss, reml=False)
    >>> m1 = lmer("Reaction ~ Days + (Days | Subject)", ss, reml=False)
    >>> bootstrap_lrt(m0, m1, n_boot=9, seed=1, progress=False).p_value
    0.1
    """
    _check_pair(m0, m1, "bootstrap_lrt()")
    if m0.reml or m1.reml:
        warnings.warn("refitting the REML fit(s) by maximum likelihood (ML) for the likelihood-ratio test",
                      LmerWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        small, large = sorted((m.refit_ml() for m in (m0, m1)), key=lambda m: m.df)
    table = lrt(small, large)
    replicates = _replicates(lambda rng: _one_lrt(small, large, rng), n_boot, seed, n_jobs, progress)
    values = replicates["statistic"].to_numpy(dtype=float)
    statistic, df = float(table["statistic"].iloc[1]), int(table["df"].iloc[1])
    p_boot = (1 + np.sum(values >= statistic - 1e-10)) / (1 + len(values))
    return BootstrapLRT(statistic, df, float(p_boot), float(table["p_value"].iloc[1]), values)


# ------------------------------------------------------------------ Hausman
HAUSMAN_COLUMNS = ["term", "fixed_effects", "random_effects", "difference", "std_error"]


@dataclass(frozen=True, eq=False)
class HausmanResult:
    """Hausman test of fixed against random effects.

    Attributes
    ----------
    statistic : float
        (b_FE - b_RE)' [Var(b_FE) - Var(b_RE)]^- (b_FE - b_RE).
    df : int
        Rank of Var(b_FE) - Var(b_RE).
    p_value : float
        Chi-squared upper tail.
    note : str
        Empty, or a warning that the variance difference is not positive definite.
    comparison : DataFrame
        One row per compared slope: term, fixed_effects, random_effects,
        difference, std_error (sqrt of the diagonal of the variance
        difference; NaN where that is negative).
    """

    statistic: float
    df: int
    p_value: float
    note: str
    comparison: pd.DataFrame

    @property
    def test(self) -> pd.DataFrame:
        """One row: method, statistic, df, p_value, note."""
        return pd.DataFrame([{"method": "Hausman test", "statistic": self.statistic, "df": float(self.df),
                              "p_value": self.p_value, "note": self.note}])

    def __repr__(self) -> str:
        note = f"\n{self.note}" if self.note else ""
        return (f"Hausman test: chi2({self.df}) = {self.statistic:.4f}, p = {self.p_value:.4g}{note}\n"
                f"{self.comparison.to_string(index=False)}")


def _is_fixed_effects(result) -> bool:
    return isinstance(result, EstimatorResult) and result.method.startswith("fixed effects")


def _check_hausman_pair(fe, re_fit) -> None:
    """fe from fixed_effects(), re_fit a random-effects fit, both of the same response on the same rows."""
    random_kinds = (RandomEffectsGLSResult, LmerResult)
    if isinstance(fe, random_kinds) and _is_fixed_effects(re_fit):
        raise ValueError("hausman(fe, re) takes the fixed-effects fit first; the arguments are swapped")
    require_type(fe, EstimatorResult, "hausman(): fe", "estimators.fixed_effects()")
    if not _is_fixed_effects(fe):
        raise ValueError(f"hausman(): fe must come from estimators.fixed_effects(), not a {fe.method!r} fit")
    require_type(re_fit, random_kinds, "hausman(): re_fit", "estimators.random_effects_gls() or mlmcourse.lmer()")
    difference = fe.fingerprint.difference(re_fit.fingerprint)
    if difference:
        raise ValueError(f"hausman() compares two fits to the same data, but {difference}")


def _estimates_and_vcov(result) -> tuple[pd.Series, pd.DataFrame]:
    if isinstance(result, LmerResult):
        return result.fixef, result.vcov
    return result.estimate, result.vcov


def hausman(fe, re_fit) -> HausmanResult:
    """Hausman test: do the fixed- and random-effects estimates differ more than chance allows?

    Parameters
    ----------
    fe : EstimatorResult
        From :func:`mlmcourse.estimators.fixed_effects` (consistent under
        both hypotheses).
    re_fit : RandomEffectsGLSResult or LmerResult
        From :func:`mlmcourse.estimators.random_effects_gls` or
        ``mlmcourse.lmer`` (efficient under H0), fitted to the same response
        on the same rows.

    Returns
    -------
    HausmanResult
        ``statistic``, ``df``, ``p_value``, ``note``, ``test`` (the same as
        a one-row table: method, statistic, df, p_value, note) and
        ``comparison`` (term, fixed_effects, random_effects, difference,
        std_error) of the slopes the two fits share.

    Raises
    ------
    TypeError
        A fit of the wrong kind (naming the expected one).
    ValueError
        The arguments swapped, a first fit that is not fixed effects, or fits
        of different responses, rows or response values.

    Notes
    -----
    :math:`H = d' [V_{FE} - V_{RE}]^{-} d` with :math:`d = b_{FE} - b_{RE}`,
    chi-squared with df = rank of the variance difference (Hausman 1978;
    Stata ``hausman fe re``). With estimated variances the difference need
    not be positive definite; a generalised inverse is then used and
    ``note`` says so (Stata warns the same way). A small p-value says the
    within and between effects differ: use fixed effects or, better, the
    within-between model.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.estimators import fixed_effects, random_effects_gls
    >>> hs = mlmcourse.load("hsb40")
    >>> test = hausman(fixed_effects("MathAch ~ SES", hs, "School"),
    ...                random_effects_gls("MathAch ~ SES", hs, "School"))
    >>> list(test.test.columns[:4]), test.df
    (['method', 'statistic', 'df', 'p_value'], 1)
    """
    _check_hausman_pair(fe, re_fit)
    b_fe, v_fe = _estimates_and_vcov(fe)
    b_re, v_re = _estimates_and_vcov(re_fit)
    terms = [t for t in b_fe.index if t in b_re.index and t != "(Intercept)"]
    if not terms:
        raise ValueError(f"the two fits share no slope: {list(b_fe.index)} vs {list(b_re.index)}")
    d = (b_fe[terms] - b_re[terms]).to_numpy(dtype=float)
    v = v_fe.loc[terms, terms].to_numpy(dtype=float) - v_re.loc[terms, terms].to_numpy(dtype=float)
    eigenvalues = np.linalg.eigvalsh(v)
    note = ""
    if eigenvalues.min() <= 0:
        note = ("Var(b_FE) - Var(b_RE) is not positive definite (smallest eigenvalue "
                f"{eigenvalues.min():.3g}); the statistic uses a generalised inverse and df = its rank")
    df = int(np.linalg.matrix_rank(v))
    statistic = float(d @ np.linalg.pinv(v, hermitian=True) @ d)
    diagonal = np.diag(v)
    comparison = pd.DataFrame({"term": terms, "fixed_effects": b_fe[terms].to_numpy(dtype=float),
                               "random_effects": b_re[terms].to_numpy(dtype=float), "difference": d,
                               "std_error": np.sqrt(np.where(diagonal > 0, diagonal, np.nan))})
    return HausmanResult(statistic, df, float(stats.chi2.sf(statistic, df)), note, comparison[HAUSMAN_COLUMNS])
