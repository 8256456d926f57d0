"""Pieces shared by :func:`mlmcourse.lmer` and :func:`mlmcourse.glmer` fits.

lme4 builds its linear and generalized mixed models from the same random-effect
terms: the terms are put in the same order, a fit is singular by the same
rule, ``VarCorr`` has the same layout and the information criteria count
parameters the same way. Both model modules take these from here.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from mlmcourse._messages import ConvergenceWarning, LmerWarning, SingularFitWarning
from mlmcourse.design import RandomBlock

SINGULAR_TOLERANCE = 1e-4  # lme4's isSingular(tol = 1e-4)


def lme4_block_order(blocks: list[RandomBlock]) -> list[RandomBlock]:
    """lme4's mkReTrms: if any term has more levels than the one before, use rev(order(levels))."""
    levels = [len(b.labels) for b in blocks]
    if any(b > a for a, b in zip(levels, levels[1:])):
        order = sorted(range(len(blocks)), key=lambda i: levels[i])  # stable, as R's order()
        return [blocks[i] for i in reversed(order)]
    return blocks


def singular_terms(blocks: list[RandomBlock], theta: np.ndarray) -> list[str]:
    """The random-effect terms with a diagonal entry of T below lme4's singularity tolerance.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> block = SimpleNamespace(coding=SimpleNamespace(names=["(Intercept)"]), group="g")
    >>> singular_terms([block], np.array([0.0]))
    ['((Intercept) | g)']
    """
    out, start = [], 0
    for block in blocks:
        k = len(block.coding.names)
        diagonal = np.cumsum([0] + [k - j for j in range(k - 1)])  # column-major positions of T[j, j]
        if np.any(theta[start + diagonal] < SINGULAR_TOLERANCE):
            out.append(f"({' + '.join(block.coding.names)} | {block.group})")
        start += k * (k + 1) // 2
    return out


def rank_notes(names: Sequence[str], kept: np.ndarray, why: str = "") -> list[tuple[str, type]]:
    """lme4's note on fixed-effect columns dropped as linear combinations of the others (none if all kept).

    Examples
    --------
    >>> rank_notes(["(Intercept)", "x", "x2"], np.array([True, True, False]))[0][0]
    'fixed-effect model matrix is rank deficient so dropping 1 column(s): x2'
    """
    if kept.all():
        return []
    dropped = [n for n, k in zip(names, kept) if not k]
    return [(f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} column(s): "
             f"{', '.join(dropped)}{why}", LmerWarning)]


def fit_notes(flagged: Sequence[str], converged: bool, message: str) -> list[tuple[str, type]]:
    """The notes on a finished fit: a singular fit (the terms ``singular_terms`` flagged) and non-convergence."""
    notes = []
    if flagged:
        notes.append(("boundary (singular) fit: a variance is estimated as zero or a correlation as +-1 in "
                      f"{', '.join(flagged)}; consider simplifying the random part", SingularFitWarning))
    if not converged:
        notes.append((f"the optimizer did not converge ({message}); the estimates may be wrong", ConvergenceWarning))
    return notes


def unique_names(names: list[str]) -> list[str]:
    """R's make.names(unique = TRUE), which lme4 applies when a grouping factor repeats.

    Examples
    --------
    >>> unique_names(["Subject", "Subject"])
    ['Subject', 'Subject.1']
    """
    if len(set(names)) == len(names):
        return names
    clean = ["".join(ch if ch.isalnum() or ch in "._" else "." for ch in n) for n in names]
    seen: dict[str, int] = {}
    out = []
    for name in clean:
        count = seen.get(name, 0)
        out.append(name if count == 0 else f"{name}.{count}")
        seen[name] = count + 1
    return out


def varcorr_frame(blocks: Sequence[RandomBlock], factors: Sequence[np.ndarray], scale2: float = 1.0,
                  residual: float | None = None) -> pd.DataFrame:
    """lme4's ``as.data.frame(VarCorr(m))``: per term the variances, then the covariances.

    Parameters
    ----------
    blocks : list of RandomBlock
        The random-effect terms, in lme4's order.
    factors : list of numpy.ndarray
        The relative covariance factor T of each term; a term's covariance is scale2 T T'.
    scale2 : float, default 1
        sigma^2 of a linear mixed model, 1 for a GLMM.
    residual : float, optional
        The residual standard deviation, added as the last row (linear mixed models).
    """
    rows = []
    for group, block, T in zip(unique_names([b.group for b in blocks]), blocks, factors):
        cov = scale2 * T @ T.T
        sd = np.sqrt(np.diag(cov))
        names = block.coding.names
        rows += [(group, n, None, cov[i, i], sd[i]) for i, n in enumerate(names)]
        for j in range(len(names)):
            for i in range(j + 1, len(names)):
                corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                rows.append((group, names[j], names[i], cov[i, j], corr))
    if residual is not None:
        rows.append(("Residual", None, None, residual**2, residual))
    grp, var1, var2, vcov, sdcor = zip(*rows)
    return pd.DataFrame({"grp": list(grp), "var1": pd.Series(var1, dtype=object),  # None where lme4 has NA
                         "var2": pd.Series(var2, dtype=object), "vcov": vcov, "sdcor": sdcor})


def aic(deviance: float, npar: int) -> float:
    """Akaike's criterion from -2 log-likelihood and the number of parameters (R's ``AIC``)."""
    return deviance + 2 * npar


def bic(deviance: float, npar: int, nobs: int) -> float:
    """Schwarz's criterion, with log(number of observations) per parameter (R's ``BIC``)."""
    return deviance + np.log(nobs) * npar


def simulate_frame(draw: Callable[[np.random.Generator], np.ndarray], seed, nsim: int,
                   index: pd.Index) -> pd.DataFrame:
    """``nsim`` responses from ``draw(rng)`` as columns sim_1, ..., sim_<nsim> (lme4's ``simulate``).

    Examples
    --------
    >>> frame = simulate_frame(lambda rng: rng.normal(size=3), 1, 2, pd.RangeIndex(3))
    >>> list(frame.columns), frame.shape
    (['sim_1', 'sim_2'], (3, 2))
    """
    if not isinstance(nsim, (int, np.integer)) or isinstance(nsim, bool) or nsim < 1:
        raise ValueError(f"nsim must be a positive whole number, not {nsim!r}")
    rng = np.random.default_rng(seed)
    return pd.DataFrame({f"sim_{i + 1}": draw(rng) for i in range(int(nsim))}, index=index)
