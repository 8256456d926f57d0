"""How much of the variance lies between groups, and what it does to estimates.

Intraclass correlations (model based and the ANOVA estimator), the design
effect and the inflation of OLS standard errors under clustering, and the
shrinkage of group estimates (BLUE -> BLUP) in a fitted mixed model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlmcourse._messages import DataWarning, require_type
from mlmcourse.groups import _check_columns, _per_group_ols
from mlmcourse.lmm import LmerResult

__all__ = [
    "ICC_COLUMNS",
    "SHRINKAGE_COLUMNS",
    "GLS_MEAN_COLUMNS",
    "IccAnova",
    "icc",
    "icc_table",
    "icc_anova",
    "design_effect",
    "se_inflation",
    "shrinkage",
    "gls_mean",
]

ICC_COLUMNS = ["grp", "variance", "icc"]
ICC_ANOVA_COLUMNS = ["n0", "msb", "msw", "tau2", "sigma2", "icc", "eta_squared"]
SHRINKAGE_COLUMNS = ["level", "term", "n", "blue", "blup", "gls_mean", "shrinkage_factor", "condsd"]
GLS_MEAN_COLUMNS = ["estimator", "estimate", "std_error"]


# --------------------------------------------------------------------------- helpers
def _require_fit(fit, what: str) -> None:
    require_type(fit, LmerResult, f"{what}: fit", "mlmcourse.lmer()")


def _numbers(name: str, value) -> np.ndarray:
    """`value` as a float array; a missing, infinite or non-numeric value is refused by name."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of numbers, not {value!r}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return array


def _cluster_sizes(n) -> np.ndarray:
    n = _numbers("cluster size n", n)
    if np.any(n < 1):
        raise ValueError(f"cluster size n must be at least 1, got {n.min()}")
    return n


def _shares(name: str, value) -> np.ndarray:
    """A variance share (VPC): between 0 and 1."""
    array = _numbers(name, value)
    if np.any((array < 0) | (array > 1)):
        bad = array[(array < 0) | (array > 1)].ravel()[0]
        raise ValueError(f"{name} is a share of variance and must lie between 0 and 1, got {bad}")
    return array


def _random_terms(fit) -> pd.DataFrame:
    """The variance rows of a fit's varcorr, without the residual."""
    varcorr = fit.varcorr
    variances = varcorr[varcorr["var2"].isna()]
    return variances[variances["grp"] != "Residual"]


def _one_grouping_factor(fit, group: str | None) -> str:
    factors = list(fit.ngroups)
    if len(factors) != 1:
        if group is not None:
            fit.grouping_factor(group)  # names an unknown factor first
        raise ValueError(f"the model has {len(factors)} grouping factors {factors}; per-group estimates would "
                         "ignore the others, so this needs a model with one grouping factor")
    return fit.grouping_factor(group)


# --------------------------------------------------------------------------- ICC
def icc_table(fit) -> pd.DataFrame:
    """Model-based intraclass correlations of a random-intercept model, one row per grouping factor.

    Parameters
    ----------
    fit : LmerResult
        A model whose random terms are intercepts only, e.g.
        ``MathAch ~ 1 + (1 | School)`` or crossed/nested ``(1|a) + (1|b)``.

    Returns
    -------
    DataFrame
        Columns ``grp`` (the grouping factor), ``variance`` (its
        random-intercept variance) and ``icc`` (that variance over the total,
        random effects plus residual).

    Raises
    ------
    TypeError
        `fit` is not an lmer() fit.
    ValueError
        If the model has a random slope: the between-group variance then
        depends on the covariate and there is no single ICC.

    Notes
    -----
    :math:`\\rho = \\tau_{00} / (\\tau_{00} + \\sigma^2)` (Raudenbush & Bryk
    2002, ch. 4; Snijders & Bosker 2012, sec. 3.3). With several factors
    each row is that factor's share of the variance (the variance partition
    coefficient, VPC, of Goldstein, Browne & Rasbash 2002); in a nested
    model ``(1|a/b)`` the correlation of two
    units in the same b (and a) is the sum of both rows.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("MathAch ~ 1 + (1 | School)", mlmcourse.load("hsb40"))
    >>> icc_table(fit).round(4).values.tolist()
    [['School', 8.0445, 0.1687]]
    """
    _require_fit(fit, "icc_table()")
    rows = _random_terms(fit)
    slopes = rows[rows["var1"] != "(Intercept)"]
    if len(slopes):
        grp, term = slopes.iloc[0]["grp"], slopes.iloc[0]["var1"]
        raise ValueError(
            f"the model has a random slope for {term!r} in {grp!r}: the variance between {grp} groups "
            f"depends on {term}, so there is no single ICC. Use the random-intercept model (without the "
            f"slope) for the ICC, or compute the variance at chosen values of {term} from varcorr.")
    total = float(rows["vcov"].sum()) + float(fit.sigma2)
    table = pd.DataFrame({"grp": rows["grp"].to_numpy(), "variance": rows["vcov"].to_numpy(dtype=float)})
    table["icc"] = table["variance"] / total
    return table[ICC_COLUMNS]


def icc(fit, group: str | None = None) -> float:
    """Model-based intraclass correlation of one grouping factor (``performance::icc``).

    Parameters
    ----------
    fit : LmerResult
        A random-intercept model (see :func:`icc_table`).
    group : str, optional
        The grouping factor (as in ``varcorr["grp"]``); needed when the model
        has several.

    Returns
    -------
    float
        That factor's random-intercept variance over the total variance.
        :func:`icc_table` gives every factor's as a table.

    Raises
    ------
    TypeError
        `fit` is not an lmer() fit.
    KeyError
        `group` is not a grouping factor, or is missing while the model has several.
    ValueError
        A random slope (no single ICC).

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("MathAch ~ 1 + (1 | School)", mlmcourse.load("hsb40"))
    >>> round(icc(fit), 4), round(icc(fit, "School"), 4)
    (0.1687, 0.1687)
    """
    _require_fit(fit, "icc()")
    table = icc_table(fit)
    factors = list(table["grp"])
    if group is None and len(factors) == 1:
        group = factors[0]
    elif group is None:
        raise KeyError(f"the model has {len(factors)} grouping factors {factors}; name one, e.g. "
                       f"icc(fit, {factors[0]!r}), or use icc_table(fit) for all")
    if group not in factors:
        raise KeyError(f"{group!r} is not a grouping factor of the model; they are {factors}")
    return float(table.loc[table["grp"] == group, "icc"].iloc[0])


@dataclass(frozen=True)
class IccAnova:
    """One-way ANOVA (method-of-moments) estimate of the ICC.

    Attributes
    ----------
    nobs : int
        Rows used.
    ngroups : dict
        ``{group: number of groups}``.
    n0 : float
        Effective group size (N - sum n_j^2 / N) / (J - 1).
    msb, msw : float
        Between- and within-group mean squares.
    tau2, sigma2 : float
        Between variance (MSB - MSW) / n0 (negative when MSB < MSW) and
        within variance MSW.
    icc : float
        tau2 / (tau2 + sigma2).
    eta_squared : float
        SS_between / SS_total, the ratio of sums of squares (not an ICC).
    """

    nobs: int
    ngroups: dict
    n0: float
    msb: float
    msw: float
    tau2: float
    sigma2: float
    icc: float
    eta_squared: float

    def to_frame(self) -> pd.DataFrame:
        """The estimates as a one-row DataFrame: n0, msb, msw, tau2, sigma2, icc, eta_squared."""
        return pd.DataFrame([{name: getattr(self, name) for name in ICC_ANOVA_COLUMNS}])


def _complete_rows(data: pd.DataFrame, y: str, group: str) -> pd.DataFrame:
    _check_columns(data, [y, group])
    if not pd.api.types.is_numeric_dtype(data[y]) or pd.api.types.is_bool_dtype(data[y]):
        raise TypeError(f"column {y!r} is not numeric ({data[y].dtype})")
    complete = data[[y, group]].dropna()
    if len(complete) < len(data):
        warnings.warn(f"{len(data) - len(complete)} rows with a missing {y!r} or {group!r} were dropped",
                      DataWarning, stacklevel=3)
    return complete


def icc_anova(data: pd.DataFrame, y: str, group: str) -> IccAnova:
    """ICC from the one-way ANOVA mean squares (method of moments, unbalanced groups).

    Parameters
    ----------
    data : DataFrame
    y : str
        Numeric outcome column.
    group : str
        Grouping column.

    Returns
    -------
    IccAnova
        Attributes nobs, ngroups, n0, msb, msw, tau2, sigma2, icc,
        eta_squared; ``to_frame()`` gives the estimates as a one-row DataFrame.

    Notes
    -----
    :math:`MSB = \\sum_j n_j(\\bar y_j - \\bar y)^2/(J-1)`,
    :math:`MSW = \\sum_{ij}(y_{ij} - \\bar y_j)^2/(N-J)`,
    :math:`n_0 = (N - \\sum_j n_j^2/N)/(J-1)`,
    :math:`\\hat\\tau^2 = (MSB - MSW)/n_0`,
    :math:`\\hat\\rho = \\hat\\tau^2/(\\hat\\tau^2 + MSW)` (Snijders & Bosker
    2012, sec. 3.3). The estimate is not truncated: a negative value says the
    groups differ less than chance alone would make them. A ratio of the
    *sums* of squares (``eta_squared`` here) overstates the ICC because
    SS_between contains within-group noise.
    For balanced data with positive tau2 the estimate equals REML.

    Examples
    --------
    >>> import mlmcourse
    >>> round(icc_anova(mlmcourse.load("hsb40"), "MathAch", "School").icc, 3)
    0.156
    """
    complete = _complete_rows(data, y, group)
    values = complete[y].astype(float)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"column {y!r} has {int((~np.isfinite(values)).sum())} infinite value(s)")
    if len(values) and float(values.max()) == float(values.min()):
        raise ValueError(f"column {y!r} has no variance (every value is {values.iloc[0]:g}), so there is "
                         "no share of it between groups to estimate")
    grouped = values.groupby(complete[group], observed=True)
    n_j, mean_j = grouped.size(), grouped.mean()
    n_obs, n_groups = int(n_j.sum()), int(len(n_j))
    if n_groups < 2 or n_obs <= n_groups:
        raise ValueError(f"the ANOVA ICC needs at least 2 groups and more rows than groups; "
                         f"{y!r} has {n_obs} rows in {n_groups} groups of {group!r}")
    ss_between = float((n_j * (mean_j - values.mean()) ** 2).sum())
    ss_within = float(((values - grouped.transform("mean")) ** 2).sum())
    msb, msw = ss_between / (n_groups - 1), ss_within / (n_obs - n_groups)
    n0 = (n_obs - float((n_j**2).sum()) / n_obs) / (n_groups - 1)
    tau2 = (msb - msw) / n0
    return IccAnova(n_obs, {group: n_groups}, n0, msb, msw, tau2, msw, tau2 / (tau2 + msw),
                    ss_between / (ss_between + ss_within))


# --------------------------------------------------------------------------- design effect
def design_effect(icc: float | np.ndarray, n: float | np.ndarray) -> float | np.ndarray:
    """Design effect of cluster sampling: 1 + (n - 1) * icc.

    Parameters
    ----------
    icc : float or array
        Intraclass correlation.
    n : float or array
        (Average) cluster size, at least 1.

    Returns
    -------
    float or ndarray
        How many times larger the variance of a mean is than under simple
        random sampling of the same number of units.

    Raises
    ------
    ValueError
        If n < 1, or icc lies outside [-1/(n - 1), 1] (the range of a
        correlation shared by n units), or a value is missing or infinite.

    Notes
    -----
    Kish (1965); Snijders & Bosker (2012, eq. 3.17). The effective sample
    size is N / design_effect.

    Examples
    --------
    >>> round(design_effect(0.1, 30), 10)
    3.9
    """
    icc, n = _numbers("icc", icc), _cluster_sizes(n)
    lowest = np.where(n > 1, -1.0 / np.maximum(n - 1.0, 1e-300), -np.inf)
    outside = (icc > 1 + 1e-12) | (icc < lowest - 1e-12)
    if np.any(outside):
        bad_icc = np.broadcast_to(icc, outside.shape)[outside].ravel()[0]
        bad_n = np.broadcast_to(n, outside.shape)[outside].ravel()[0]
        raise ValueError(f"icc = {bad_icc:g} is not a correlation of clusters of size {bad_n:g}: it must lie "
                         f"between -1/(n - 1) = {-1 / (bad_n - 1) if bad_n > 1 else -np.inf:g} and 1")
    result = 1.0 + (n - 1.0) * icc
    return float(result) if result.ndim == 0 else result


def se_inflation(vpc_x: float | np.ndarray, vpc_y: float | np.ndarray,
                 n: float | np.ndarray) -> float | np.ndarray:
    """Factor by which clustering inflates the true SE of an OLS slope: sqrt(1 + VPC_x VPC_y (n - 1)).

    Parameters
    ----------
    vpc_x, vpc_y : float or array
        Share of the variance of the predictor and of the outcome (errors)
        that lies between clusters.
    n : float or array
        Units per cluster (constant cluster size).

    Returns
    -------
    float or ndarray
        :math:`SE_{true} / SE_{OLS}`.

    Raises
    ------
    ValueError
        If a VPC lies outside [0, 1], n < 1, or a value is missing or infinite.

    Notes
    -----
    The Moulton factor: :math:`SE_{true} = SE_{OLS}\\sqrt{1 + VPC_x VPC_y (n - 1)}`,
    for constant n and one predictor (Moulton 1986, 1990; Cameron & Miller
    2015, sec. II). No inflation when either variable has no
    between-cluster variance.

    Examples
    --------
    >>> round(se_inflation(0.5, 0.2, 31), 4)
    2.0
    """
    vpc_x, vpc_y, n = _shares("vpc_x", vpc_x), _shares("vpc_y", vpc_y), _cluster_sizes(n)
    result = np.sqrt(1.0 + vpc_x * vpc_y * (n - 1.0))
    return float(result) if result.ndim == 0 else result


# --------------------------------------------------------------------------- shrinkage
def _random_columns(fit, terms: list[str]) -> pd.DataFrame:
    """Model-data columns of the random terms ("(Intercept)" is a column of ones)."""
    data = fit.model_data
    columns = {}
    for term in terms:
        if term == "(Intercept)":
            columns[term] = np.ones(len(data))
        elif term in data.columns and pd.api.types.is_numeric_dtype(data[term]):
            columns[term] = data[term].to_numpy(dtype=float)
        else:
            raise ValueError(f"shrinkage() needs random terms that are numeric columns of the data; "
                             f"{term!r} is not")
        if term not in fit.fixef.index:
            raise ValueError(f"random term {term!r} has no fixed effect, so its BLUP has no BLUE to compare")
    return pd.DataFrame(columns, index=data.index)


def _blue_per_group(partial: pd.Series, z: pd.DataFrame, groups: pd.Series, order: list) -> pd.DataFrame:
    """Per-group OLS of the partial response on the random-term columns, and diag((Z'Z)^-1), in `order`."""
    table = _per_group_ols(partial, z, groups).rename(columns={"estimate": "blue"})
    position = {level: i for i, level in enumerate(order)}
    table = table.assign(_order=table["level"].map(position)).sort_values(["_order"], kind="stable")
    return table[["level", "term", "n", "blue", "unscaled"]].reset_index(drop=True)


def shrinkage(fit, group: str | None = None) -> pd.DataFrame:
    """Per-group OLS estimates (BLUE) next to the mixed model's predictions (BLUP).

    Parameters
    ----------
    fit : LmerResult
        A model with one grouping factor, e.g. ``MathAch ~ 1 + (1 | School)``
        or ``MathAch ~ SES + (SES | School)``.
    group : str, optional
        The grouping factor (default: the model's only one).

    Returns
    -------
    DataFrame
        One row per group and random term, columns:
        ``level`` (the group), ``term``, ``n`` (rows of the group), ``blue`` (the group's
        own OLS estimate), ``blup`` (``coef()``: fixef + ranef), ``gls_mean``
        (the fixed effect the BLUPs shrink towards), ``shrinkage_factor``,
        ``condsd`` (conditional SD of the random effect).

    Notes
    -----
    BLUE: OLS in the group of the response minus the fixed part of the terms
    that are not random, on the random terms. For ``y ~ 1 + (1|g)`` that is
    the group mean of y (the group's own OLS intercept); with fixed
    covariates it is the group mean of y minus their fixed part, so that
    BLUP - gls_mean = shrinkage_factor x (BLUE - gls_mean) holds exactly.
    shrinkage_factor: :math:`\\lambda_j = \\tau_{qq}/(\\tau_{qq} + \\sigma^2 [(Z_j'Z_j)^{-1}]_{qq})`,
    which is :math:`\\tau_{00}/(\\tau_{00} + \\sigma^2/n_j)` for the intercept
    (the reliability of Raudenbush & Bryk 2002, ch. 3). With random slopes the BLUP
    shrinks the coefficients jointly (through G), so the factor is the
    reliability of each OLS coefficient, not the exact ratio.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("MathAch ~ 1 + (1 | School)", mlmcourse.load("hsb40"))
    >>> row = shrinkage(fit).set_index("level").loc["8854"]
    >>> round(float(row["blue"]), 3), round(float(row["blup"]), 3)
    (4.24, 5.356)
    """
    _require_fit(fit, "shrinkage()")
    group = _one_grouping_factor(fit, group)
    ranef = fit.ranef[fit.ranef["grpvar"] == group]
    terms = list(dict.fromkeys(ranef["term"]))
    z = _random_columns(fit, terms)
    fixef = fit.fixef
    fixed_part = pd.Series(np.asarray(fit.predict(include_random=False), dtype=float), index=z.index)
    partial = fit.model_data[fit.response].astype(float) - fixed_part + z @ fixef[terms]
    groups = pd.Series(np.asarray(fit.groups[group]).astype(str), index=z.index)
    coef = fit.coef(group).rename(index=str)
    table = _blue_per_group(partial, z, groups, list(coef.index))
    table["blup"] = [coef.at[g, t] for g, t in zip(table["level"], table["term"])]
    table["gls_mean"] = fixef[table["term"]].to_numpy()
    tau = np.diag(fit.random_covariance(group).loc[terms, terms].to_numpy())
    tau_row = table["term"].map(dict(zip(terms, tau)))
    table["shrinkage_factor"] = tau_row / (tau_row + fit.sigma2 * table["unscaled"])
    condsd = ranef.assign(grp=ranef["grp"].astype(str)).set_index(["grp", "term"])["condsd"]
    table["condsd"] = [condsd.get((g, t), np.nan) for g, t in zip(table["level"], table["term"])]
    return table[SHRINKAGE_COLUMNS].reset_index(drop=True)


def gls_mean(fit) -> pd.DataFrame:
    """Three estimates of the overall mean in the one-way random-effects ANOVA.

    Parameters
    ----------
    fit : LmerResult
        The intercept-only random-intercept model ``y ~ 1 + (1 | g)``.

    Returns
    -------
    DataFrame
        Columns ``estimator``, ``estimate``, ``std_error``; rows "gls"
        (precision weights), "mean_of_means" (equal weight per group) and
        "overall_mean" (equal weight per unit, weights n_j / N).

    Notes
    -----
    Each is :math:`\\sum_j w_j \\bar y_j` with weights summing to one and,
    under the model, variance :math:`\\sum_j w_j^2(\\tau_{00} + \\sigma^2/n_j)`
    (Raudenbush & Bryk 2002, ch. 3). The GLS weights are proportional to
    :math:`1/(\\tau_{00} + \\sigma^2/n_j)`; they give the smallest variance,
    and the GLS row equals the fitted intercept and its SE.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("MathAch ~ 1 + (1 | School)", mlmcourse.load("hsb40"))
    >>> round(float(gls_mean(fit).set_index("estimator").loc["gls", "estimate"]), 4)
    12.6047
    """
    _require_fit(fit, "gls_mean()")
    group = _one_grouping_factor(fit, None)
    rows = _random_terms(fit)
    if list(fit.fixef.index) != ["(Intercept)"] or list(rows["var1"]) != ["(Intercept)"]:
        raise ValueError("gls_mean() needs the intercept-only model y ~ 1 + (1 | group); "
                         f"this model is {fit.formula!r}")
    y = fit.model_data[fit.response].astype(float)
    grouped = y.groupby(np.asarray(fit.groups[group]))
    n_j, mean_j = grouped.size().to_numpy(float), grouped.mean().to_numpy()
    variance_j = float(rows["vcov"].iloc[0]) + fit.sigma2 / n_j
    weights = {"gls": 1.0 / variance_j, "mean_of_means": np.ones_like(n_j), "overall_mean": n_j}
    table = []
    for name, w in weights.items():
        w = w / w.sum()
        table.append({"estimator": name, "estimate": float(w @ mean_j),
                      "std_error": float(np.sqrt(w**2 @ variance_j))})
    return pd.DataFrame(table, columns=GLS_MEAN_COLUMNS)
