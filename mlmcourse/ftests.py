"""Type III F tests of the fixed-effect terms of a mixed model: :func:`anova`, as lmerTest's ``anova(m)``.

Notes
-----
Each model term (a main effect, an interaction, a factor with several
columns) is tested by an F test of L beta = 0, whose rows L are lmerTest's
type III contrasts (Goodnight 1980; SAS's type III; Kuznetsova et al. 2017):
starting from the full-rank design, each term's contrasts are made orthogonal
to those of every term that contains it (an interaction contains its main
effects when the numeric variables agree). The denominator df are
Satterthwaite's or Kenward-Roger's (:mod:`mlmcourse.ddf`).
"""

from __future__ import annotations

from dataclasses import replace

from itertools import product

import numpy as np
import pandas as pd

from mlmcourse import ddf as _ddf
from mlmcourse.formula import Coding, design_matrix, level_label

__all__ = ["anova", "type3_contrasts", "ANOVA_COLUMNS"]

ANOVA_COLUMNS = ["term", "method", "statistic", "df", "p_value", "num_df", "den_df"]


def _zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's zapsmall: round to `digits` significant digits of the largest entry."""
    largest = np.max(np.abs(x)) if x.size else 0.0
    decimals = max(0, digits - int(np.ceil(np.log10(largest)))) if largest > 0 else digits
    return np.round(x, decimals)


def _term_label(term) -> str:
    return ":".join(var for var, _ in term)


def _full_coding(coding: Coding) -> tuple[Coding, list[str]]:
    """One indicator per level for every factor of every term (lmerTest's over-parametrized X)."""
    terms = tuple(tuple((var, "numeric" if how == "numeric" else "full") for var, how in term) for term in coding.terms)
    names = ["(Intercept)"] if coding.intercept else []
    for term in terms:
        parts = [[var] if how == "numeric" else [f"{var}{level_label(level)}" for level in coding.levels[var]]
                 for var, how in term]
        names += [":".join(reversed(combo)) for combo in product(*reversed(parts))]
    return replace(coding, terms=terms, names=names), names


def _columns_of_terms(coding: Coding, kept: np.ndarray) -> dict[str, list[int]]:
    """Which kept columns of X belong to each term."""
    owner = (["(Intercept)"] if coding.intercept else [])
    for term in coding.terms:
        size = int(np.prod([1 if how == "numeric" else len(coding.levels[var]) - (how == "contrast")
                            for var, how in term]))
        owner += [_term_label(term)] * size
    owner = [o for o, keep in zip(owner, kept) if keep]
    return {label: [j for j, o in enumerate(owner) if o == label] for label in dict.fromkeys(owner)}


def _contains(inner, outer, numeric: set) -> bool:
    a, b = {v for v, _ in inner}, {v for v, _ in outer}
    return a < b and (a & numeric) == (b & numeric)


def type3_contrasts(fit) -> dict[str, np.ndarray]:
    """lmerTest's type III contrast matrices, one per model term (rows: hypotheses, columns: fixed effects).

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("MathAch ~ SES * Sector + (1 | School)", mlmcourse.load("hsb40"))
    >>> {term: L.shape for term, L in type3_contrasts(m).items()}
    {'SES': (1, 4), 'Sector': (1, 4), 'SES:Sector': (1, 4)}
    """
    design = fit.design
    coding, frame, kept = design.coding, design.frame, design.kept
    X = design.problem.X
    full, full_names = _full_coding(coding)
    L = _zapsmall((np.linalg.pinv(X) @ design_matrix(full, frame)).T)  # rows: full columns, columns: X's
    columns = _columns_of_terms(coding, kept)
    numeric = {var for term in coding.terms for var, how in term if how == "numeric"}
    terms = {_term_label(t): t for t in coding.terms}
    for label in sorted(terms, key=lambda t: -len(terms[t])):
        containing = [c for other, t in terms.items() if _contains(terms[label], t, numeric) for c in columns.get(other, [])]
        own = columns.get(label, [])
        if containing and own:
            A = L[:, containing]
            coef = np.linalg.lstsq(A, L[:, own], rcond=None)[0]
            L[:, own] = _zapsmall(L[:, own] - A @ coef)
    rows = [full_names.index(name) for name in design.fixed_names]
    L = L[rows]
    out = {}
    for label in terms:
        block = L[:, columns.get(label, [])].T
        out[label] = block[np.abs(block).sum(axis=1) > 1e-8]
    return out


def anova(fit, ddf: str = "satterthwaite") -> pd.DataFrame:
    """Type III F tests, one per fixed-effect term, with lmerTest's numbers.

    Parameters
    ----------
    fit : LmerResult
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, default "satterthwaite"
        Denominator degrees of freedom (Kenward-Roger needs a REML fit;
        "asymptotic" gives Wald chi-square tests divided by their df).

    Returns
    -------
    pandas.DataFrame
        One row per term; columns term, method, statistic (F), df
        (= num_df), p_value, num_df, den_df. To compare two models, use
        :func:`mlmcourse.inference.lrt`.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("MathAch ~ SES * Sector + (1 + SES | School)", mlmcourse.load("hsb40"))
    >>> anova(m)["term"].tolist()
    ['SES', 'Sector', 'SES:Sector']
    """
    rows = []
    for term, L in type3_contrasts(fit).items():
        if len(L) == 0:
            continue
        rows.append({"term": term, **_ddf.contrast_row(fit, L, ddf=ddf)})
    if not rows:
        raise ValueError(f"the model {fit.formula!r} has no fixed-effect term besides the intercept to test")
    return pd.DataFrame(rows, columns=ANOVA_COLUMNS)
