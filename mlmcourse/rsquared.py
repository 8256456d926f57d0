"""Explained variance in a linear mixed model: :func:`r2`.

Three answers to "how much does the model explain?":

* Nakagawa & Schielzeth (2013), with Johnson's (2014) extension to random
  slopes, as ``performance::r2_nakagawa``: marginal R2 = s2_f / (s2_f + s2_r +
  s2_e) and conditional R2 = (s2_f + s2_r) / (s2_f + s2_r + s2_e), with s2_f the
  variance of X beta, s2_r the mean over rows of z_i' G z_i (the random-effect
  variance at each row's own covariates) and s2_e the residual variance.
* Snijders & Bosker (1994; 2012, section 7.1): the proportional reduction of
  prediction error against the empty model y ~ 1 + (1 | group), at level 1
  (R2_1 = 1 - (s2 + t2) / (s2_0 + t2_0)) and for group means of n rows
  (R2_2 = 1 - (s2 / n + t2) / (s2_0 / n + t2_0)).
* Rights & Sterba (2019): the model-implied total variance split into five
  parts, fixed effects of within-group predictors (f1), of between-group
  predictors (f2), random-slope variation (v), random-intercept variation (m)
  and the residual; each share of the total is an R2. It needs level-1
  predictors centred within groups, so that the parts are uncorrelated.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["r2", "nakagawa", "snijders_bosker", "rights_sterba", "PARTS"]

#: The Rights & Sterba parts, in drawing order.
PARTS = ["fixed_within", "fixed_between", "slope_variation", "intercept_variation", "residual"]
_TOL = 1e-8


def _random_variance(fit) -> float:
    """Johnson's s2_r: mean over rows of z_i' G z_i, summed over random terms."""
    total = 0.0
    for block, T in zip(fit._design.blocks, fit._design.problem.factors(fit.theta)):
        G = fit.sigma2 * T @ T.T
        total += float(np.mean(np.einsum("ij,jk,ik->i", block.columns, G, block.columns)))
    return total


def nakagawa(fit) -> dict:
    """Marginal and conditional R2 (Nakagawa & Schielzeth 2013; Johnson 2014), as performance::r2_nakagawa.

    Returns
    -------
    dict
        marginal, conditional, and the variances fixed, random, residual.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> {k: round(v, 3) for k, v in nakagawa(m).items() if k in ("marginal", "conditional")}
    {'marginal': 0.279, 'conditional': 0.799}
    """
    fixed = float(np.var(fit._design.problem.X @ fit.fixef.to_numpy(), ddof=1))
    random, residual = _random_variance(fit), fit.sigma2
    total = fixed + random + residual
    return {"marginal": fixed / total, "conditional": (fixed + random) / total, "fixed": fixed, "random": random,
            "residual": residual}


def _intercept_only_group(fit) -> str:
    blocks = fit._design.blocks
    if len(blocks) != 1 or blocks[0].coding.names != ["(Intercept)"]:
        raise ValueError(f"Snijders & Bosker's R2 is defined for one random intercept, (1 | group); the model "
                         f"{fit.formula!r} has {[f'(' + ' + '.join(b.coding.names) + ' | ' + b.group + ')' for b in blocks]}"
                         ": fit the same fixed part with a random intercept only")
    return blocks[0].group


def snijders_bosker(fit, cluster_size: float | None = None) -> dict:
    """Snijders & Bosker's R2_1 (level 1) and R2_2 (group means) against the empty model.

    Parameters
    ----------
    fit : LmerResult
        A random-intercept model ``y ~ ... + (1 | group)``.
    cluster_size : float, optional
        The n of R2_2; default the mean number of rows per group.

    Returns
    -------
    dict
        r2_level1, r2_level2, cluster_size.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("langPOST ~ IQ_verb + (1 | schoolNR)", mlmcourse.load("bdf"))
    >>> round(snijders_bosker(m)["r2_level1"], 3)
    0.384
    """
    from mlmcourse.lmm import LmerWarning, lmer

    group = _intercept_only_group(fit)
    n = fit.nobs / fit.ngroups[group] if cluster_size is None else float(cluster_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        empty = lmer(f"{fit.response} ~ 1 + (1 | {group})", fit.model_data, reml=fit.reml)
    tau2, tau2_0 = (float(m.varcorr["vcov"].iloc[0]) for m in (fit, empty))
    return {"r2_level1": 1 - (fit.sigma2 + tau2) / (empty.sigma2 + tau2_0),
            "r2_level2": 1 - (fit.sigma2 / n + tau2) / (empty.sigma2 / n + tau2_0), "cluster_size": n}


def _classify(fit, codes: np.ndarray) -> tuple[list[int], list[int]]:
    """Columns of X that vary only within groups (group means 0) and only between them (constant in a group)."""
    X, names = fit._design.problem.X, list(fit.fixef.index)
    counts = np.bincount(codes)
    within, between = [], []
    for j, name in enumerate(names):
        if name == "(Intercept)":
            continue
        column = X[:, j]
        means = np.bincount(codes, weights=column) / counts
        scale = max(np.std(column), 1e-300)
        if np.max(np.abs(means)) < 1e-6 * scale + _TOL:
            within.append(j)
        elif np.max(np.abs(column - means[codes])) < 1e-8 * scale + _TOL:
            between.append(j)
        else:
            raise ValueError(f"the column {name!r} varies both within and between groups: Rights & Sterba's "
                             "decomposition needs level-1 predictors centred within groups (mlmcourse.groups."
                             "groups.center) and level-2 predictors constant within groups")
    return within, between


def rights_sterba(fit) -> pd.DataFrame:
    """Rights & Sterba's (2019) decomposition of the model-implied variance of y.

    Parameters
    ----------
    fit : LmerResult
        One grouping factor; level-1 predictors centred within groups.

    Returns
    -------
    pandas.DataFrame
        One row per part (fixed_within, fixed_between, slope_variation,
        intercept_variation, residual); columns part, variance, total
        (share of the total variance), within (share of the within-group
        variance: f1, v, residual), between (share of the between-group
        variance: f2, m). Each share column sums to 1 where defined.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.groups import center
    >>> hs = mlmcourse.load("hsb40")
    >>> hs["ses_w"] = center(hs, "SES", "School")["SES_within"]
    >>> m = mlmcourse.lmer("MathAch ~ ses_w + MEANSES + (1 + ses_w | School)", hs)
    >>> round(float(rights_sterba(m)["total"].sum()), 10)
    1.0
    """
    groups = list(dict.fromkeys(b.group for b in fit._design.blocks))
    if len(groups) != 1:
        raise ValueError(f"Rights & Sterba's decomposition is for one grouping factor; the model has {groups}")
    block = fit._design.blocks[0]
    codes, X, beta = block.codes, fit._design.problem.X, fit.fixef.to_numpy()
    within, between = _classify(fit, codes)
    part = {name: float(np.var(X[:, cols] @ beta[cols], ddof=1)) if cols else 0.0
            for name, cols in (("fixed_within", within), ("fixed_between", between))}
    G = fit.random_covariance(block.group).to_numpy()
    names = block.coding.names
    slopes = [i for i, n in enumerate(names) if n != "(Intercept)"]
    Z = block.columns[:, slopes]
    part["slope_variation"] = float(np.trace(G[np.ix_(slopes, slopes)] @ np.atleast_2d(np.cov(Z, rowvar=False))))\
        if slopes else 0.0
    part["intercept_variation"] = float(G[names.index("(Intercept)"), names.index("(Intercept)")]) \
        if "(Intercept)" in names else 0.0
    part["residual"] = fit.sigma2
    variance = np.array([part[p] for p in PARTS])
    is_within = np.array([True, False, True, False, True])
    return pd.DataFrame({"part": PARTS, "variance": variance, "total": variance / variance.sum(),
                         "within": np.where(is_within, variance / variance[is_within].sum(), np.nan),
                         "between": np.where(~is_within, variance / max(variance[~is_within].sum(), 1e-300), np.nan)})


def r2(fit) -> pd.DataFrame:
    """R2 measures of a linear mixed model in one table.

    Returns
    -------
    pandas.DataFrame
        Columns measure, value: Nakagawa's marginal and conditional R2
        (always); Snijders & Bosker's R2_1 and R2_2 (random-intercept models);
        Rights & Sterba's shares of the total variance (one grouping factor
        with level-1 predictors centred within groups). Measures that do
        not apply to the model are left out.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> r2(m)["measure"].tolist()[:2]
    ['marginal (Nakagawa)', 'conditional (Nakagawa)']
    """
    ns = nakagawa(fit)
    rows = [("marginal (Nakagawa)", ns["marginal"]), ("conditional (Nakagawa)", ns["conditional"])]
    try:
        sb = snijders_bosker(fit)
        rows += [("R2_1 (Snijders-Bosker)", sb["r2_level1"]), ("R2_2 (Snijders-Bosker)", sb["r2_level2"])]
    except ValueError:
        pass
    try:
        rs = rights_sterba(fit)
        rows += [(f"{p} share (Rights-Sterba)", v) for p, v in zip(rs["part"], rs["total"])]
    except ValueError:
        pass
    return pd.DataFrame(rows, columns=["measure", "value"])
