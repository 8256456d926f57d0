"""The estimators compared in the book's pooling chapter ("six ways to compare two sectors").

Pooled OLS, no pooling (one regression per group), fixed effects (within and
dummy variables), the between-group regression, the two-stage ("slopes as
outcomes") approach, per-group averages, the econometric random-effects GLS
and the within-between (REWB / Mundlak) mixed model.

statsmodels fits the OLS-family models and linearmodels the panel estimators;
this module shapes their results. Both receive the response and model matrix
that :func:`mlmcourse.design.regression_design` builds from the formula, so
every estimator reads R's formula syntax (``I(SES^2)``, ``log(y)``,
``poly(x, 2)``, ``scale(x)``, ``factor(g)``, ordered factors) and names
coefficients as R's ``lm()`` does ("(Intercept)", "SES", "SectorPublic",
"SES:SectorPublic"). Every result has ``coef_table()``: a tidy DataFrame with
the package's columns (term, estimate, std_error, statistic, df, p_value,
conf_low, conf_high; per-group results put a key column such as ``level`` in
front). The Hausman test is in :mod:`mlmcourse.inference`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from linearmodels import BetweenOLS, PanelOLS, RandomEffects
from scipy import stats
from statsmodels.multivariate.manova import MANOVA

from mlmcourse._messages import DataWarning, Fingerprint
from mlmcourse.design import fixed_design, independent_columns, model_frame, regression_design
from mlmcourse.formula import ColumnNotFoundError, parse_rhs
from mlmcourse.groups import _check_columns, _per_group_ols, center, group_table
from mlmcourse.lmm import COEF_COLUMNS, LmerWarning, coef_frame

__all__ = [
    "COEF_COLUMNS",
    "EstimatorResult",
    "RandomEffectsGLSResult",
    "NoPoolingResult",
    "TwoStageResult",
    "PerGroupAverageResult",
    "WithinBetweenResult",
    "pooled",
    "no_pooling",
    "fixed_effects",
    "between",
    "two_stage",
    "per_group_average",
    "random_effects_gls",
    "within_between",
]

#: The library's numbers kept by each result; ``coef_table()`` adds the intervals.
TIDY_COLUMNS = ["term", "estimate", "std_error", "statistic", "df", "p_value"]
NO_POOLING_COLUMNS = ["level", "term", "n", "df", "sigma", "estimate", "std_error", "statistic", "p_value"]
#: Columns of the F and MANOVA tests (one row per test).
F_TEST_COLUMNS = ["method", "statistic", "df", "p_value", "num_df", "den_df"]
MV_TEST_COLUMNS = [*F_TEST_COLUMNS, "term", "value"]
VARCORR_COLUMNS = ["grp", "var1", "var2", "vcov", "sdcor"]


# --------------------------------------------------------------------------- results
def _keyed(keys: list[str], table: pd.DataFrame, level: float) -> pd.DataFrame:
    """Coefficient table of the library's numbers in `table`, with its `keys` columns in front."""
    coefs = coef_frame(pd.Series(table["estimate"].to_numpy(), index=table["term"].to_numpy()),
                       table["std_error"].to_numpy(), table["df"].to_numpy(), level,
                       p_value=table["p_value"].to_numpy())
    for position, key in enumerate(keys):
        coefs.insert(position, key, table[key].to_numpy())
    return coefs


class _ShowTable:
    """Readable printing: a one-line header followed by the coefficient table."""

    def _header(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        shown = self.coef_table().drop(columns=["conf_low", "conf_high"])
        return f"{self._header()}\n{shown.to_string(index=False, max_rows=20)}"


@dataclass(frozen=True, eq=False, repr=False)
class EstimatorResult(_ShowTable):
    """One fitted single-equation estimator.

    Attributes
    ----------
    method : str
        "pooled OLS", "pooled OLS (cluster-robust CR1)", "fixed effects (within)", ...
    formula : str
    vcov : DataFrame
        Covariance matrix of the estimates (terms x terms).
    nobs : int
        Rows used (after dropping rows with missing values).
    ngroups : dict
        ``{grouping factor: number of groups}``; empty for pooled OLS without
        clusters.
    sigma : float
        Residual standard deviation of the fitted regression.
    df_resid : float
        Residual degrees of freedom.
    backend : object
        The underlying statsmodels or linearmodels results object, fitted on
        the model matrix's columns divided by their root mean square (so that
        no predictor's units change another's numbers); ``coef_table()`` and
        ``vcov`` are in the columns' own units.
    fingerprint : Fingerprint
        The response, rows and values used (to check that fits compare the same data).

    Notes
    -----
    ``coef_table()`` gives the coefficients in the package's vocabulary;
    ``estimate`` and ``std_error`` are Series indexed by term.
    """

    method: str
    formula: str
    vcov: pd.DataFrame
    nobs: int
    ngroups: dict
    sigma: float
    df_resid: float
    backend: Any
    fingerprint: Fingerprint
    _coefs: pd.DataFrame

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """Columns term, estimate, std_error, statistic (t), df (of the t reference), p_value, conf_low, conf_high."""
        return _keyed([], self._coefs, level)

    @property
    def estimate(self) -> pd.Series:
        """The estimates as a Series indexed by term."""
        return self._coefs.set_index("term")["estimate"].rename_axis(None)

    @property
    def std_error(self) -> pd.Series:
        """The standard errors as a Series indexed by term."""
        return self._coefs.set_index("term")["std_error"].rename_axis(None)

    def _header(self) -> str:
        groups = "".join(f", {n} {g} groups" for g, n in self.ngroups.items())
        return (f"{self.method}: {self.formula}  ({self.nobs} observations{groups}; "
                f"residual SD {self.sigma:.4g} on {self.df_resid:g} df)")


@dataclass(frozen=True, eq=False, repr=False)
class RandomEffectsGLSResult(EstimatorResult):
    """Econometric random-effects GLS; adds the variance components and theta.

    Attributes
    ----------
    varcorr : DataFrame
        lme4's layout: columns grp (the grouping factor, then "Residual"),
        var1 ("(Intercept)", then None), var2 (None), vcov (variance), sdcor (SD).
    theta : Series
        Quasi-demeaning weight per group, 1 - sqrt(sigma2 / (n_j tau2 + sigma2)).
    """

    varcorr: pd.DataFrame
    theta: pd.Series

    @property
    def rho(self) -> float:
        """Share of the error variance that lies between groups."""
        variances = self.varcorr["vcov"]
        return float(variances.iloc[0] / variances.sum())


@dataclass(frozen=True, eq=False, repr=False)
class NoPoolingResult(_ShowTable):
    """One OLS regression per group (lme4's ``lmList``).

    Attributes
    ----------
    formula : str
    group : str
        The grouping factor.
    terms : list of str
        The coefficient names, in model order.
    groups : DataFrame
        One row per group (index: its level): n (rows), df (n minus
        coefficients), sigma (the group's residual SD).
    sigma_pooled : float
        sqrt(sum of residual sums of squares / sum of residual df): the pooled
        within-group residual SD that ``summary(lmList(...))`` uses.
    df_pooled : int
    ngroups : dict
        ``{group: number of groups}``.
    """

    formula: str
    group: str
    terms: list
    groups: pd.DataFrame
    sigma_pooled: float
    df_pooled: int
    ngroups: dict
    _coefs: pd.DataFrame

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """One row per group x term: level (the group), then the coefficient columns.

        A group without enough data for its own regression has missing
        estimates (lmList gives NA too).
        """
        return _keyed(["level"], self._coefs, level)

    def wide(self, value: str = "estimate") -> pd.DataFrame:
        """Group x term table of one column (lmList's ``coef()`` for "estimate")."""
        if value not in ("estimate", "std_error", "statistic", "p_value"):
            raise ValueError(f"value must be 'estimate', 'std_error', 'statistic' or 'p_value', not {value!r}")
        wide = self._coefs.pivot(index="level", columns="term", values=value)
        return wide.reindex(columns=self.terms).rename_axis(index=self.group, columns=None)

    def _header(self) -> str:
        return f"no pooling: {self.formula} fitted in each {self.group} (pooled SD {self.sigma_pooled:.4g})"


@dataclass(frozen=True, eq=False, repr=False)
class TwoStageResult(_ShowTable):
    """Two-stage ("derived variables", "slopes as outcomes") analysis.

    Attributes
    ----------
    mv_test : DataFrame
        Multivariate (MANOVA) tests of each level-2 term on all stage-1
        coefficients jointly, one row per term and test: method (Wilks'
        lambda, Pillai's trace, Hotelling-Lawley trace, Roy's greatest root),
        statistic (F), df (= num_df), p_value, num_df, den_df, term, value
        (the multivariate statistic itself).
    stage1 : NoPoolingResult
    level2 : str
        The stage-2 right-hand side.
    ngroups : dict
        ``{group: groups used in stage 2}``.
    """

    mv_test: pd.DataFrame
    stage1: NoPoolingResult
    level2: str
    ngroups: dict
    _coefs: pd.DataFrame

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """response (the stage-1 coefficient being explained), then the stage-2 coefficient columns."""
        return _keyed(["response"], self._coefs, level)

    def _header(self) -> str:
        return f"two-stage: ({self.stage1.formula}) per {self.stage1.group}, then ~ {self.level2}"


@dataclass(frozen=True, eq=False, repr=False)
class PerGroupAverageResult(_ShowTable):
    """Equal-weight averages of per-group coefficients by a level-2 factor.

    Attributes
    ----------
    wald : DataFrame
        Joint F test that all differences are zero, one row: method,
        statistic (F), df (= num_df), p_value, num_df, den_df.
    sigma : float
        Pooled within-group residual SD.
    df_resid : int
    backend : statsmodels results of the one-regression-per-group model.
    """

    wald: pd.DataFrame
    sigma: float
    df_resid: int
    backend: Any
    _coefs: pd.DataFrame

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """contrast (a level of `by`, or "<level> - <reference>"), then the coefficient columns."""
        return _keyed(["contrast"], self._coefs, level)

    def _header(self) -> str:
        return f"per-group averages (pooled within-group SD {self.sigma:.4g} on {self.df_resid} df)"


@dataclass(frozen=True, eq=False, repr=False)
class WithinBetweenResult(_ShowTable):
    """Within-between (REWB) or Mundlak mixed model.

    Attributes
    ----------
    model : LmerResult
        The mixed model as fitted by ``mlmcourse.lmer``.
    formula : str
        The formula given to lmer (with ``<x>_within`` / ``<x>_mean`` terms).
    """

    model: Any
    formula: str
    _coefs: pd.DataFrame

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """effect ("within", "between", "contextual"), then the coefficient columns (term: the variable).

        Wald z tests (df ``inf``), as ``coef_table()`` of the lmer fit.
        """
        return _keyed(["effect"], self._coefs, level)

    def _header(self) -> str:
        return f"within-between model: {self.formula}"


def _fingerprint(y: pd.Series, data: pd.DataFrame) -> Fingerprint:
    """Response values with the labels of the data rows they came from (y is indexed by position)."""
    return Fingerprint(str(y.name), pd.Index(data.index[y.index.to_numpy()]), np.asarray(y, dtype=float).copy())


# --------------------------------------------------------------------------- designs
def _check_formula(formula: str) -> None:
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a string like 'MathAch ~ SES', not {formula!r}")
    if "|" in formula:
        raise ValueError(
            f"formula {formula!r} has a random-effects term '( ... | ... )'; this estimator takes "
            "an ordinary regression formula (use mlmcourse.lmer for mixed models)"
        )


def _design(formula: str, data: pd.DataFrame, group: str | None = None, role: str = "the grouping column",
            weights: str | None = None) -> tuple[pd.Series, pd.DataFrame, pd.Series | None]:
    """Response (minus any offset), model matrix (R's names and order, collinear columns dropped), groups.

    Rows are positions in `data` (its index is reset); rows with a missing
    value in any column the model needs are dropped with a warning.
    """
    _check_formula(formula)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    data = data.reset_index(drop=True)
    extra = {group: role} if group is not None else {}
    if weights is not None:
        extra[weights] = "the weights"
    design = regression_design(formula, data, extra)
    for message in design.frame.messages:
        warnings.warn(message, LmerWarning, stacklevel=3)
    if design.dropped:
        warnings.warn(f"the model matrix of {formula!r} is rank deficient, so {len(design.dropped)} column(s) "
                      f"were dropped: {', '.join(design.dropped)} (a linear combination of the columns before; "
                      "R's lm reports NA for them)", LmerWarning, stacklevel=3)
    groups = None
    if group is not None:
        groups = data.loc[design.X.index, group].rename(group)
        if groups.nunique() < 2:
            raise ValueError(f"{role} {group!r} has only one group ({groups.iloc[0]!r}) among the rows used; "
                             "at least two groups are needed")
    return design.response, design.X, groups


def _weights(data: pd.DataFrame, weights: str, rows: pd.Index) -> np.ndarray:
    values = data.reset_index(drop=True).loc[rows, weights]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise TypeError(f"the weights column {weights!r} must be numeric, not {values.dtype}")
    if (values <= 0).any():
        raise ValueError(f"the weights column {weights!r} has {int((values <= 0).sum())} value(s) that are not "
                         "positive; weights must be positive")
    return values.to_numpy(dtype=float)


def _refuse_exact_fit(y: pd.Series, x: pd.DataFrame, groups: pd.Series | None = None, how: str = "") -> None:
    """A response the predictors (within `groups`, if given) reproduce exactly leaves no error variance."""
    yv, xv = y.to_numpy(dtype=float), x.to_numpy(dtype=float)
    if groups is not None:
        yv = yv - y.groupby(groups.values).transform("mean").to_numpy()
        xv = xv - x.groupby(groups.values).transform("mean").to_numpy()
    beta = np.linalg.lstsq(xv, yv, rcond=None)[0] if xv.shape[1] else np.zeros(0)
    spread = np.linalg.norm(yv - yv.mean())
    if np.linalg.norm(yv - xv @ beta) <= 1e-10 * spread:
        terms = [c for c in x.columns if c != "(Intercept)"] or ["the intercept"]
        raise ValueError(f"the response {y.name!r} is fitted exactly by {', '.join(terms)}{how} (every residual "
                         "is 0), so there is no error variance to base standard errors on")


def _translate_errors(what: str, fit):
    """Call `fit()`, turning the libraries' rank and cluster errors into the course's words."""
    try:
        return fit()
    except ZeroDivisionError:
        raise ValueError(f"{what}: cluster-robust standard errors need at least two clusters") from None
    except ValueError as error:
        if "rank" in str(error):
            raise ValueError(f"{what}: the columns of the model matrix are linearly dependent after removing "
                             "the group means (a term is a combination of the others within groups); "
                             "drop one of the terms involved") from None
        raise


def _varying_columns(x: pd.DataFrame, groups: pd.Series, formula: str) -> list[str]:
    """Columns that vary within groups; warn about level-2 terms the groups absorb."""
    spread = (x - x.groupby(groups.values).transform("mean")).abs().max()
    scale = x.abs().max().clip(lower=1.0)
    varying = spread > 1e-10 * scale
    absorbed = [c for c in x.columns if not varying[c] and c != "(Intercept)"]
    if absorbed:
        warnings.warn(
            f"term(s) {absorbed} do not vary within {groups.name}: the {groups.name} effects absorb "
            "them, so they have no fixed-effects estimate (R's lm reports NA)", stacklevel=3)
    kept = [c for c in x.columns if varying[c]]
    if not kept:
        raise ValueError(f"no term of {formula!r} varies within {groups.name}; nothing to estimate")
    within = (x[kept] - x[kept].groupby(groups.values).transform("mean")).to_numpy()
    independent = independent_columns(within)
    if not independent.all():
        dependent = [c for c, keep in zip(kept, independent) if not keep]
        warnings.warn(f"within {groups.name}, term(s) {dependent} are linear combinations of the terms before "
                      "them, so they were dropped (R's lm reports NA)", LmerWarning, stacklevel=3)
    return [c for c, keep in zip(kept, independent) if keep]


def _panel(y: pd.Series, x: pd.DataFrame, groups: pd.Series) -> tuple[pd.Series, pd.DataFrame]:
    """Attach the (group, row-within-group) index that linearmodels needs."""
    within = groups.groupby(groups.values, sort=False).cumcount()
    index = pd.MultiIndex.from_arrays([groups.astype(str).to_numpy(), within.to_numpy()],
                                      names=[groups.name, "row"])
    return y.set_axis(index), x.set_axis(index)


def _unit_columns(x: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The columns divided by their root mean square, and those scales.

    statsmodels and linearmodels solve with pseudo-inverses whose cut-off is
    relative to the largest column, so a predictor in tiny or huge units would
    change the others' numbers; they get unit-scale columns and
    :func:`_in_user_units` maps their numbers back.
    """
    scale = np.sqrt((x.astype(float) ** 2).mean())
    scale = scale.where((scale > 0) & np.isfinite(scale), 1.0)
    return x / scale, scale


def _in_user_units(scale: pd.Series, estimate, std_error, vcov) -> tuple:
    """Estimates, standard errors and covariance of unit-scale columns, in the columns' own units."""
    s = scale.reindex(pd.Index(estimate.index)).to_numpy()
    vcov = pd.DataFrame(np.asarray(vcov, dtype=float) / np.outer(s, s), index=vcov.index, columns=vcov.columns)
    return estimate / s, std_error / s, vcov


def _tidy(estimate, std_error, p_value, df) -> pd.DataFrame:
    estimate = pd.Series(estimate, dtype=float)
    std_error = pd.Series(std_error, dtype=float).reindex(estimate.index)
    table = pd.DataFrame({
        "term": [str(t) for t in estimate.index],
        "estimate": estimate.to_numpy(),
        "std_error": std_error.to_numpy(),
        "statistic": (estimate / std_error).to_numpy(),
        "df": float(df),
        "p_value": pd.Series(p_value, dtype=float).reindex(estimate.index).to_numpy(),
    })
    return table[TIDY_COLUMNS]


def _named_vcov(vcov: pd.DataFrame) -> pd.DataFrame:
    names = [str(t) for t in vcov.index]
    return pd.DataFrame(np.asarray(vcov, dtype=float), index=names, columns=names)


# --------------------------------------------------------------------------- pooled
def pooled(formula: str, data: pd.DataFrame, *, cluster: str | None = None,
           weights: str | None = None) -> EstimatorResult:
    """Complete pooling: OLS that ignores the groups (method 1 of the pooling chapter).

    Parameters
    ----------
    formula : str
        Regression formula, e.g. ``"MathAch ~ SES * Sector"``.
    data : DataFrame
    cluster : str, optional
        Grouping column for cluster-robust standard errors (CR1, the
        ``vce(cluster)`` of Stata's ``regress``); t tests then use
        (number of clusters - 1) df, as Stata does.
    weights : str, optional
        Column of positive weights: weighted least squares, as R's
        ``lm(..., weights = w)`` (precision weights: row i has residual
        variance sigma^2 / w_i). Only this estimator takes weights.

    Returns
    -------
    EstimatorResult
        ``coef_table()`` columns: term, estimate, std_error, statistic, df,
        p_value, conf_low, conf_high; ``sigma`` is R's "Residual standard error".

    Notes
    -----
    R: ``lm(mathach ~ ses * Sector, hs)``; with clusters,
    ``coeftest(fit, vcovCL(fit, ~ school, type = "HC1"))`` (which keeps the
    residual df). Clustering does not change the estimates, only the SEs
    (cluster-robust SEs need many clusters; Cameron & Miller 2015, "A
    practitioner's guide to cluster-robust inference").

    Examples
    --------
    >>> import mlmcourse
    >>> fit = pooled("MathAch ~ SES * Sector", mlmcourse.load("hsb40"))
    >>> round(float(fit.estimate["SES:SectorPublic"]), 4), round(fit.sigma, 3)
    (1.6051, 6.344)
    """
    y, x, clusters = _design(formula, data, cluster, "the cluster column", weights)
    _refuse_exact_fit(y, x)
    x, scale = _unit_columns(x)
    model = sm.OLS(y, x) if weights is None else sm.WLS(y, x, weights=_weights(data, weights, x.index))
    name = "pooled OLS" if weights is None else "pooled WLS"
    if cluster is None:
        fit = model.fit()
        method, ngroups, df = name, {}, fit.df_resid
    else:
        codes = pd.factorize(clusters)[0]
        fit = _translate_errors("pooled", lambda: model.fit(cov_type="cluster", cov_kwds={"groups": codes},
                                                            use_t=True))
        method, df = f"{name} (cluster-robust CR1)", fit.df_resid_inference
        ngroups = {cluster: int(codes.max()) + 1}
    estimate, std_error, vcov = _in_user_units(scale, fit.params, fit.bse, fit.cov_params())
    table = _tidy(estimate, std_error, fit.pvalues, df)
    return EstimatorResult(method, formula, _named_vcov(vcov), int(fit.nobs), ngroups,
                           float(np.sqrt(fit.mse_resid)), float(fit.df_resid), fit, _fingerprint(y, data), table)


# --------------------------------------------------------------------------- no pooling
def _no_pooling_rows(y: pd.Series, x: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """The per-group regressions with t statistics and two-sided p-values (df = n - k)."""
    table = _per_group_ols(y, x, groups)
    table["statistic"] = table["estimate"] / table["std_error"]
    table["p_value"] = 2 * stats.t.sf(np.abs(table["statistic"]), table["df"].where(table["df"] > 0))
    return table


def no_pooling(formula: str, data: pd.DataFrame, group: str) -> NoPoolingResult:
    """No pooling: a separate OLS regression in every group (lme4's ``lmList``).

    Parameters
    ----------
    formula : str
        Level-1 regression, e.g. ``"MathAch ~ SES"``.
    data : DataFrame
    group : str
        Grouping column.

    Returns
    -------
    NoPoolingResult
        ``coef_table()`` columns: level (the group), term, estimate,
        std_error, statistic, df, p_value, conf_low, conf_high (one row per
        group x term); ``groups`` the size, df and residual SD of each group;
        ``wide()`` the group x term table of estimates; ``sigma_pooled`` the
        pooled SD.

    Notes
    -----
    R: ``lmList(mathach ~ ses | school, hs)``. The model matrix is built once
    from all the data, so every group has the same columns. A group with
    fewer rows than coefficients, or whose covariates are collinear (e.g. all
    students with the same SES), gets missing estimates and a warning, as
    ``lmList`` gives NA.

    Examples
    --------
    >>> import mlmcourse
    >>> fits = no_pooling("MathAch ~ SES", mlmcourse.load("hsb40"), "School")
    >>> fits.wide().shape
    (40, 2)
    """
    y, x, groups = _design(formula, data, group)
    table = _no_pooling_rows(y, x, groups)[NO_POOLING_COLUMNS]
    failed = table.loc[table["estimate"].isna(), "level"].unique().tolist()
    if failed:
        warnings.warn(f"{len(failed)} {group} group(s) have too little data for their own regression "
                      f"(estimates missing): {failed[:10]}", DataWarning, stacklevel=2)
    per_group = table.drop_duplicates("level").set_index("level").rename_axis(group)[["n", "df", "sigma"]]
    used = per_group.query("df > 0 and sigma == sigma")
    df_pooled = int(used["df"].sum())
    sigma_pooled = float(np.sqrt((used["sigma"] ** 2 * used["df"]).sum() / df_pooled))
    return NoPoolingResult(formula, group, list(x.columns), per_group, sigma_pooled, df_pooled,
                           {group: len(per_group)}, table)


# --------------------------------------------------------------------------- fixed effects
def fixed_effects(formula: str, data: pd.DataFrame, group: str, method: str = "within") -> EstimatorResult:
    """Fixed effects: every group its own intercept (method 2b of the pooling chapter).

    Parameters
    ----------
    formula : str
        E.g. ``"MathAch ~ SES + SES:Sector"`` (the slope may differ by sector;
        Sector itself is absorbed by the school intercepts).
    data : DataFrame
    group : str
        Grouping column whose effects are removed.
    method : {"within", "dummy"}
        "within": linearmodels ``PanelOLS(entity_effects=True)`` (the
        within-group, demeaned regression, Stata's ``xtreg, fe``);
        "dummy": OLS with one dummy variable per group (R's
        ``lm(y ~ x + factor(g))``). Both give the same slopes and SEs.

    Returns
    -------
    EstimatorResult
        ``coef_table()`` has the terms that vary within groups; terms
        constant within groups (level-2 variables, the intercept) are
        absorbed and left out with a warning.

    Notes
    -----
    Within estimator: OLS of :math:`y_{ij} - \\bar y_{j}` on
    :math:`x_{ij} - \\bar x_{j}`, with residual df N - J - k. R:
    ``lm(mathach ~ ses + factor(school) + ses:Sector, hs)``: the coefficient
    ``ses:SectorPublic`` is the Public - Catholic slope difference
    (in R: 1.204719, SE 0.436134, 1935 df).

    Examples
    --------
    >>> import mlmcourse
    >>> fe = fixed_effects("MathAch ~ SES + SES:Sector", mlmcourse.load("hsb40"), "School")
    >>> round(float(fe.estimate["SES:SectorPublic"]), 6)
    1.204719
    """
    if method not in ("within", "dummy"):
        raise ValueError(f"method must be 'within' or 'dummy', not {method!r}")
    y, x, groups = _design(formula, data, group)
    x, scale = _unit_columns(x)
    slopes = _varying_columns(x, groups, formula)
    _refuse_exact_fit(y, x[slopes], groups, f" within {group}")
    if method == "within":
        panel_y, panel_x = _panel(y, x[slopes], groups)
        fit = _translate_errors("fixed_effects", lambda: PanelOLS(panel_y, panel_x, entity_effects=True).fit(
            cov_type="unadjusted", debiased=True))
        estimate, std_error, p_value, vcov = fit.params, fit.std_errors, fit.pvalues, fit.cov
        sigma = float(np.sqrt(fit.resid_ss / fit.df_resid))
    elif method == "dummy":
        dummies = pd.get_dummies(groups, prefix=group, prefix_sep="", dtype=float)
        fit = sm.OLS(y, pd.concat([x[slopes], dummies.set_index(x.index)], axis=1), hasconst=True).fit()
        estimate, std_error, p_value = fit.params[slopes], fit.bse[slopes], fit.pvalues[slopes]
        vcov, sigma = fit.cov_params().loc[slopes, slopes], float(np.sqrt(fit.mse_resid))
    estimate, std_error, vcov = _in_user_units(scale, estimate, std_error, vcov)
    table = _tidy(estimate, std_error, p_value, fit.df_resid)
    return EstimatorResult(f"fixed effects ({method})", formula, _named_vcov(vcov), len(y),
                           {group: int(groups.nunique())}, sigma, float(fit.df_resid), fit, _fingerprint(y, data),
                           table)


# --------------------------------------------------------------------------- between
def between(formula: str, data: pd.DataFrame, group: str) -> EstimatorResult:
    """Between-group ("ecological") regression on the group means (method 4 of the pooling chapter).

    Parameters
    ----------
    formula : str
        E.g. ``"MathAch ~ SES"``.
    data : DataFrame
    group : str

    Returns
    -------
    EstimatorResult
        ``coef_table()`` with df = J - k; ``nobs`` is the number of rows
        averaged and ``ngroups`` the number of group means regressed.

    Notes
    -----
    OLS of :math:`\\bar y_j` on :math:`\\bar x_j`, one row per group and
    equal weight per group (linearmodels ``BetweenOLS``; Stata ``xtreg, be``).
    The columns of the model matrix are averaged, so a level-1 factor
    enters as the proportion of each level. R:
    ``lm(mathach ~ ses, up(hs, ~ school, all = TRUE))``.

    Examples
    --------
    >>> import mlmcourse
    >>> fit = between("MathAch ~ SES", mlmcourse.load("hsb40"), "School")
    >>> round(float(fit.estimate["SES"]), 4)
    5.7734
    """
    y, x, groups = _design(formula, data, group)
    means = y.groupby(groups.values).mean()
    _refuse_exact_fit(means, x.groupby(groups.values).mean(), how=f" between {group} means")
    x, scale = _unit_columns(x)
    panel_y, panel_x = _panel(y, x, groups)
    fit = _translate_errors("between", lambda: BetweenOLS(panel_y, panel_x).fit(cov_type="unadjusted",
                                                                                debiased=True))
    estimate, std_error, vcov = _in_user_units(scale, fit.params, fit.std_errors, fit.cov)
    table = _tidy(estimate, std_error, fit.pvalues, fit.df_resid)
    sigma = float(np.sqrt(fit.resid_ss / fit.df_resid))
    return EstimatorResult("between groups", formula, _named_vcov(vcov), len(y),
                           {group: int(groups.nunique())}, sigma, float(fit.df_resid), fit, _fingerprint(y, data),
                           table)


# --------------------------------------------------------------------------- two-stage
def _level2_design(level2: str, table: pd.DataFrame, group: str) -> tuple[pd.DataFrame, dict]:
    """Stage-2 model matrix from a right-hand side; also the columns of each term."""
    parsed = parse_rhs(level2)
    try:
        frame = model_frame(parsed, table)
    except ColumnNotFoundError as error:
        raise ColumnNotFoundError(
            f"{error} of the level-2 model. Level-2 variables are the columns constant within {group} "
            f"({[c for c in table.columns if not c.endswith('_mean')]}) and group means of level-1 variables "
            f"({[c for c in table.columns if c.endswith('_mean')]})") from None
    if len(frame.data) < len(table):
        raise ValueError(f"the level-2 model {level2!r} has missing values in {len(table) - len(frame.data)} "
                         f"{group} group(s); remove those groups or fill the values first")
    z, coding = fixed_design(parsed, frame)
    keep = independent_columns(z)
    if not keep.all():
        raise ValueError(f"the level-2 model {level2!r} is rank deficient: column(s) "
                         f"{[n for n, k in zip(coding.names, keep) if not k]} are combinations of the others")
    return pd.DataFrame(z, index=table.index, columns=coding.names), dict(coding.term_names)


def _mv_test(coefs: pd.DataFrame, z: pd.DataFrame, term_columns: dict) -> pd.DataFrame:
    if not term_columns:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("method", "term") else float)
                             for c in MV_TEST_COLUMNS})
    hypotheses = [(term, np.eye(z.shape[1])[[z.columns.get_loc(c) for c in cols]])
                  for term, cols in term_columns.items()]
    result = MANOVA(coefs.to_numpy(), z.to_numpy()).mv_test(hypotheses=hypotheses)
    rows = []
    for term, _ in hypotheses:
        stat = result.results[term]["stat"]
        for test, values in stat.iterrows():
            rows.append({"method": test, "statistic": values["F Value"], "df": values["Num DF"],
                         "p_value": values["Pr > F"], "num_df": values["Num DF"], "den_df": values["Den DF"],
                         "term": term, "value": values["Value"]})
    floats = ["statistic", "df", "p_value", "num_df", "den_df", "value"]
    return pd.DataFrame(rows, columns=MV_TEST_COLUMNS).astype({c: float for c in floats})


def two_stage(formula: str, data: pd.DataFrame, group: str, level2: str = "1") -> TwoStageResult:
    """Two-stage analysis: per-group OLS, then regress the coefficients on level-2 variables.

    Parameters
    ----------
    formula : str
        Stage-1 (within-group) regression, e.g. ``"MathAch ~ SES"``.
    data : DataFrame
    group : str
    level2 : str, default "1"
        Stage-2 right-hand side, e.g. ``"Sector"``; it may use any column
        constant within groups and ``<x>_mean`` (group mean of a numeric
        level-1 column x, see :func:`mlmcourse.groups.group_table`).

    Returns
    -------
    TwoStageResult
        ``coef_table()`` columns: response, term, estimate, std_error,
        statistic, df, p_value, conf_low, conf_high — one stage-2 regression
        per stage-1 coefficient, all with the same design (a multivariate
        regression); ``mv_test`` the MANOVA tests (Wilks, Pillai,
        Hotelling-Lawley, Roy) of each level-2 term.

    Notes
    -----
    Method 3 of the six ways compared in the pooling chapter. In R (``up``
    from the ``spida`` package): ``lcoefs <- coef(lmList(mathach ~ ses | school, hs));
    lm(as.matrix(lcoefs) ~ Sector, up(hs, ~ school))``. Every group counts
    equally, and the SEs come from the spread of the coefficients between
    groups. Groups whose stage-1 regression failed are left out.

    Examples
    --------
    >>> import mlmcourse
    >>> res = two_stage("MathAch ~ SES", mlmcourse.load("hsb40"), "School", level2="Sector")
    >>> slope = res.coef_table().query("response == 'SES'").set_index("term")
    >>> round(float(slope.loc["SectorPublic", "estimate"]), 4)
    1.11
    """
    stage1 = no_pooling(formula, data, group)
    coefs = stage1.wide().dropna()
    level2_table = group_table(data, group).loc[coefs.index]
    z, term_columns = _level2_design(level2, level2_table, group)
    tables = []
    for response in coefs.columns:
        fit = sm.OLS(coefs[response], z).fit()
        tables.append(_tidy(fit.params, fit.bse, fit.pvalues, fit.df_resid).assign(response=response))
    table = pd.concat(tables, ignore_index=True)[["response", *TIDY_COLUMNS]]
    mv = _mv_test(coefs, z, term_columns)
    return TwoStageResult(mv, stage1, level2.strip().lstrip("~").strip() or "1", {group: len(coefs)}, table)


# --------------------------------------------------------------------------- per-group averages
def _usable_groups(y: pd.Series, x: pd.DataFrame, groups: pd.Series) -> dict:
    """Row positions of each group that has enough data for its own regression (with residual df)."""
    fits = _per_group_ols(y, x, groups)
    enough = fits.groupby("level", sort=True).apply(lambda g: bool(g["df"].iloc[0] > 0 and g["estimate"].notna().all()))
    positions = groups.groupby(groups.values, sort=True).indices
    dropped = list(enough.index[~enough.to_numpy(dtype=bool)])
    if dropped:
        warnings.warn(f"{groups.name} group(s) {dropped[:10]} have too little data for their own "
                      "regression and are left out", DataWarning, stacklevel=3)
    return {level: positions[level] for level in enough.index[enough.to_numpy(dtype=bool)]}


def _group_level(data: pd.DataFrame, by: str, groups: pd.Series, labels: list) -> tuple[pd.Series, list]:
    """The level of `by` for each group (must be constant within groups) and its levels."""
    _check_columns(data, [by])
    values = data[by].reset_index(drop=True).loc[groups.index]
    counts = values.groupby(groups.values).nunique()
    if (counts > 1).any():
        raise ValueError(f"column {by!r} varies within {groups.name} (e.g. in "
                         f"{list(counts[counts > 1].index[:3])}); it must be a level-2 variable")
    level = values.groupby(groups.values).first().loc[labels]
    categorical = isinstance(values.dtype, pd.CategoricalDtype)
    levels = list(values.cat.categories) if categorical else sorted(level.unique())
    return level, [lv for lv in levels if (level == lv).any()]


def per_group_average(formula: str, data: pd.DataFrame, group: str, by: str) -> PerGroupAverageResult:
    """Average the per-group coefficients within each level of `by`, each group weighted equally.

    Parameters
    ----------
    formula : str
        Within-group regression, e.g. ``"MathAch ~ SES"``.
    data : DataFrame
    group : str
    by : str
        Level-2 factor whose levels are compared, e.g. ``"Sector"``.

    Returns
    -------
    PerGroupAverageResult
        ``coef_table()`` columns: contrast, term, estimate, std_error,
        statistic, df, p_value, conf_low, conf_high, with contrasts "<level>"
        (the average coefficient of the groups in that level) and
        "<level> - <reference>" (differences to the first level); ``wald`` the
        joint F test of all differences (one row).

    Notes
    -----
    Method 2a of the six ways compared in the pooling chapter. In R (``wald``
    from the ``spida`` package): ``lml <- lm(mathach ~ factor(school)/ses - 1, hs)``
    fits each school's line with a common residual variance
    :math:`\\sigma^2` (df = N - J k); each sector's average gives every school
    weight :math:`1/J_s`, and ``wald(lml, L)`` tests the differences. The SEs
    use only within-school variation, so they describe new students in the
    same schools, not new schools.

    Examples
    --------
    >>> import mlmcourse
    >>> res = per_group_average("MathAch ~ SES", mlmcourse.load("hsb40"), "School", by="Sector")
    >>> table = res.coef_table().set_index(["term", "contrast"])
    >>> round(float(table.loc[("SES", "Public - Catholic"), "estimate"]), 6)
    1.109995
    """
    y, x, groups = _design(formula, data, group)
    usable = _usable_groups(y, x, groups)
    labels, k = list(usable), x.shape[1]
    level, levels = _group_level(data, by, groups, labels)
    rows = np.concatenate(list(usable.values()))
    block = np.zeros((len(rows), len(labels) * k))
    start = 0
    for j, positions in enumerate(usable.values()):
        block[start:start + len(positions), j * k:(j + 1) * k] = x.iloc[positions].to_numpy()
        start += len(positions)
    fit = sm.OLS(y.iloc[rows].to_numpy(), block, hasconst=True).fit(method="qr")
    weights = {lv: (level == lv).to_numpy() / (level == lv).sum() for lv in levels}
    contrasts = {lv: weights[lv] for lv in levels}
    contrasts |= {f"{lv} - {levels[0]}": weights[lv] - weights[levels[0]] for lv in levels[1:]}
    table = _average_table(fit, contrasts, list(x.columns), k)
    differences = [np.kron(w, np.eye(k)) for name, w in contrasts.items() if " - " in name]
    wald = _wald_row(fit, differences, f"all {by} differences")
    return PerGroupAverageResult(wald, float(np.sqrt(fit.scale)), int(fit.df_resid), fit, table)


def _average_table(fit, contrasts: dict, terms: list, k: int) -> pd.DataFrame:
    rows = []
    for t, term in enumerate(terms):
        for name, weight in contrasts.items():
            vector = np.kron(weight, np.eye(k)[t])
            test = fit.t_test(vector[None, :])
            rows.append({"term": term, "contrast": name, "estimate": float(test.effect[0]),
                         "std_error": float(test.sd[0, 0]), "statistic": float(test.tvalue[0, 0]),
                         "df": float(test.df_denom), "p_value": float(test.pvalue)})
    return pd.DataFrame(rows, columns=["contrast", *TIDY_COLUMNS])


def _wald_row(fit, differences: list, name: str) -> pd.DataFrame:
    if not differences:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "method" else float) for c in F_TEST_COLUMNS})
    test = fit.f_test(np.vstack(differences))
    return pd.DataFrame([{"method": f"Wald F test: {name}", "statistic": float(np.squeeze(test.fvalue)),
                          "df": float(test.df_num), "p_value": float(test.pvalue), "num_df": float(test.df_num),
                          "den_df": float(test.df_denom)}], columns=F_TEST_COLUMNS)


# --------------------------------------------------------------------------- random effects GLS
def random_effects_gls(formula: str, data: pd.DataFrame, group: str, *,
                       small_sample: bool = False) -> RandomEffectsGLSResult:
    """Econometric random-effects GLS (Swamy-Arora variance components).

    Parameters
    ----------
    formula : str
        E.g. ``"MathAch ~ SES"``.
    data : DataFrame
    group : str
    small_sample : bool, default False
        Use the small-sample version of the between variance for unbalanced
        groups (Baltagi & Chang 1994) instead of the harmonic-mean group size.

    Returns
    -------
    RandomEffectsGLSResult
        ``coef_table()``, ``varcorr`` (lme4's layout grp, var1, var2, vcov,
        sdcor: the group effect and "Residual"), ``theta`` per group and
        ``rho`` (share of the error variance between groups).

    Notes
    -----
    linearmodels ``RandomEffects`` (Stata ``xtreg, re``): the residual
    variance comes from the within regression, the group variance
    :math:`\\tau^2` from the between regression, and the model is refitted by
    OLS after quasi-demeaning with
    :math:`\\theta_j = 1 - \\sqrt{\\sigma^2/(n_j\\tau^2 + \\sigma^2)}`.
    These moment estimates differ from lmer's (RE)ML ones; the fixed effects
    are usually close.

    Examples
    --------
    >>> import mlmcourse
    >>> re_fit = random_effects_gls("MathAch ~ SES", mlmcourse.load("hsb40"), "School")
    >>> list(re_fit.varcorr["grp"])
    ['School', 'Residual']
    """
    y, x, groups = _design(formula, data, group)
    _refuse_exact_fit(y, x)
    x, scale = _unit_columns(x)
    panel_y, panel_x = _panel(y, x, groups)
    fit = _translate_errors("random_effects_gls", lambda: RandomEffects(panel_y, panel_x).fit(
        small_sample=small_sample, cov_type="unadjusted", debiased=True))
    decomposition = fit.variance_decomposition
    variances = [float(decomposition["Effects"]), float(decomposition["Residual"])]
    components = pd.DataFrame({"grp": [group, "Residual"], "var1": pd.Series(["(Intercept)", None], dtype=object),
                               "var2": pd.Series([None, None], dtype=object), "vcov": variances,
                               "sdcor": np.sqrt(variances)})[VARCORR_COLUMNS]
    theta = fit.theta["theta"].rename_axis(group).rename("theta")
    estimate, std_error, vcov = _in_user_units(scale, fit.params, fit.std_errors, fit.cov)
    table = _tidy(estimate, std_error, fit.pvalues, fit.df_resid)
    return RandomEffectsGLSResult("random effects GLS", formula, _named_vcov(vcov), len(y),
                                  {group: int(groups.nunique())}, float(np.sqrt(variances[1])),
                                  float(fit.df_resid), fit, _fingerprint(y, data), table, components, theta)


# --------------------------------------------------------------------------- within-between
def _rewrite_formula(formula: str, group: str, variables: list, kind: str) -> str:
    response, rhs = formula.split("~", 1)
    if kind == "rewb":
        for variable in variables:
            rhs = re.sub(rf"(?<![\w.]){re.escape(variable)}(?![\w.])", f"{variable}_within", rhs)
    means = " + ".join(f"{v}_mean" for v in variables)
    random = "" if "|" in rhs else f" + (1 | {group})"
    return f"{response.strip()} ~ {rhs.strip()} + {means}{random}"


def _effect_rows(fit, variable: str, kind: str) -> list[dict]:
    """Within, between and contextual effects as linear combinations of two coefficients."""
    first = f"{variable}_within" if kind == "rewb" else variable
    second = f"{variable}_mean"
    for term in (first, second):
        if term not in fit.fixef.index:
            raise ValueError(f"the fitted model has no fixed term {term!r}; terms are {list(fit.fixef.index)}")
    combos = {"rewb": {"within": (1, 0), "between": (0, 1), "contextual": (-1, 1)},
              "mundlak": {"within": (1, 0), "between": (1, 1), "contextual": (0, 1)}}[kind]
    b = fit.fixef[[first, second]].to_numpy()
    v = fit.vcov.loc[[first, second], [first, second]].to_numpy()
    rows = []
    for effect, weights in combos.items():
        w = np.asarray(weights, dtype=float)
        estimate, se = float(w @ b), float(np.sqrt(w @ v @ w))
        rows.append({"effect": effect, "term": variable, "estimate": estimate, "std_error": se,
                     "statistic": estimate / se, "df": np.inf, "p_value": 2 * stats.norm.sf(abs(estimate / se))})
    return rows


def within_between(formula: str, data: pd.DataFrame, group: str, variables: str | Sequence[str], *,
                   kind: str = "rewb", reml: bool = True) -> WithinBetweenResult:
    """Within-between mixed model: separate within- and between-group effects (Bell & Jones 2015).

    Parameters
    ----------
    formula : str
        Model formula, e.g. ``"MathAch ~ SES + Sector"``. Without a random
        term, ``(1 | group)`` is added; a formula with random terms is used
        as given (after the rewriting below).
    data : DataFrame
    group : str
    variables : str or list of str
        Numeric level-1 variables to split into within and between parts.
    kind : {"rewb", "mundlak"}
        "rewb" replaces x by ``x_within`` (= x - group mean, also in
        interactions and random terms) and adds ``x_mean``: coefficients are
        the within and the between effect. "mundlak" keeps x and adds
        ``x_mean``: coefficients are the within and the contextual effect.
    reml : bool, default True

    Returns
    -------
    WithinBetweenResult
        ``model`` (the LmerResult), ``formula`` (as given to lmer) and
        ``coef_table()`` with columns effect ("within", "between",
        "contextual"), term (the variable), estimate, std_error, statistic,
        df (``inf``), p_value, conf_low, conf_high (Wald z, as the lmer fit's
        ``coef_table()``).

    Notes
    -----
    contextual = between - within; its SE uses the covariance of the two
    estimates. With group means of all level-1 covariates the within
    effect equals the fixed-effects estimate (Mundlak 1978); Bell & Jones
    (2015) call the "rewb" form the REWB model. Group means come from
    :func:`mlmcourse.groups.center` over all rows with a value.

    Examples
    --------
    >>> import mlmcourse
    >>> wb = within_between("MathAch ~ SES", mlmcourse.load("hsb40"), "School", "SES")
    >>> list(wb.coef_table()["effect"])
    ['within', 'between', 'contextual']
    """
    from mlmcourse.lmm import lmer

    variables = [variables] if isinstance(variables, str) else list(variables)
    if kind not in ("rewb", "mundlak"):
        raise ValueError(f"kind must be 'rewb' or 'mundlak', not {kind!r}")
    if group in variables:
        raise ValueError(f"{group!r} is the grouping column; list level-1 variables in `variables`")
    augmented = center(data, variables, group)
    lmer_formula = _rewrite_formula(formula, group, variables, kind)
    fit = lmer(lmer_formula, augmented, reml=reml)
    rows = [row for variable in variables for row in _effect_rows(fit, variable, kind)]
    return WithinBetweenResult(fit, lmer_formula, pd.DataFrame(rows, columns=["effect", *TIDY_COLUMNS]))
