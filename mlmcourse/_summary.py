"""Printed summaries of mixed-model fits, laid out as lme4's ``summary(m)``.

:class:`LmerSummary` (what ``LmerResult.summary()`` returns, lmerTest's
layout) and :class:`GlmerSummary` (``GlmerResult.summary()``, lme4's
``glmerMod`` layout) share the number formatting, the column alignment and the
random-effects block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlmcourse._messages import LmerWarning

if TYPE_CHECKING:  # pragma: no cover
    from mlmcourse.glmm import GlmerResult
    from mlmcourse.lmm import LmerResult

__all__ = ["LmerSummary", "GlmerSummary", "format_column", "format_p", "format_p_z", "aligned",
           "random_effects_lines"]


# ------------------------------------------------------------------ formatting
def format_column(values, digits: int = 4) -> list[str]:
    """Format numbers with a common number of decimals, as R's format(x, digits = 4).

    The smallest nonzero magnitude gets `digits` significant digits (at most
    three more decimals than the largest needs).

    Examples
    --------
    >>> format_column([12.3456, 0.0123])
    ['12.34560', '0.01230']
    """
    values = [float(v) for v in values]
    finite = [abs(v) for v in values if np.isfinite(v) and v != 0]
    if not finite:
        return [str(v) for v in values]
    needed = [max(0, digits - 1 - int(np.floor(np.log10(v)))) for v in (min(finite), max(finite))]
    decimals = min(needed[0], needed[1] + 3)
    return [f"{v:.{decimals}f}" for v in values]


def format_p(p: float) -> str:
    """R's format.pval with 3 significant digits: '< 2e-16' below machine precision (lmerTest's t tests).

    Examples
    --------
    >>> format_p(0.01234), format_p(1e-20)
    ('0.0123', '< 2e-16')
    """
    if not np.isfinite(p):
        return "NA"
    return "< 2e-16" if p < 2e-16 else (f"{p:.3g}" if p >= 1e-4 else f"{p:.2e}")


def format_p_z(p: float) -> str:
    """p-values of z tests as the GLMM summary prints them: 4 decimals, or 3 significant digits below 1e-4.

    Examples
    --------
    >>> format_p_z(0.01234), format_p_z(1e-20)
    ('0.0123', '<2e-16')
    """
    return "<2e-16" if p < 2e-16 else (f"{p:.2e}" if p < 1e-4 else f"{p:.4f}")


def aligned(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Text rows with the first `left` columns left-aligned and the rest right-aligned.

    Examples
    --------
    >>> aligned(["name", "value"], [["a", "1.5"], ["bb", "10.25"]])
    ['name value', 'a      1.5', 'bb   10.25']
    """
    cells = [header] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return [" ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in cells]


def _corr(cov: pd.DataFrame, a: str, b: str) -> str:
    match = cov[((cov["var1"] == a) & (cov["var2"] == b)) | ((cov["var1"] == b) & (cov["var2"] == a))]
    return f"{match['sdcor'].iloc[0]:.2f}" if len(match) else ""


def random_effects_lines(varcorr: pd.DataFrame) -> list[str]:
    """lme4's "Random effects:" block: groups, names, variances, standard deviations, correlations."""
    variances = varcorr[varcorr["var2"].isna()]
    columns = [format_column(variances["vcov"]), format_column(variances["sdcor"])]
    rows, position = [], 0
    for grp, sub in variances.groupby("grp", sort=False):
        cov = varcorr[(varcorr["grp"] == grp) & varcorr["var2"].notna()]
        for i, name in enumerate(sub["var1"]):
            corr = [_corr(cov, name, other) for other in sub["var1"].iloc[:i]]
            label = "" if pd.isna(name) else name
            rows.append([grp if i == 0 else "", label, columns[0][position], columns[1][position], *corr])
            position += 1
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (width - 5) if width > 4 else [])
    return [" " + line for line in aligned(header, rows, left=2)]


def _scaled_residual_lines(values: np.ndarray) -> list[str]:
    cells = [f"{v:.4f}" for v in np.quantile(values, [0, 0.25, 0.5, 0.75, 1])]
    return ["", "Scaled residuals: "] + aligned(["Min", "1Q", "Median", "3Q", "Max"], [cells], left=0)


class _Printed:
    """``print()`` shows the lines; the repr is the same text."""

    def lines(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)


# ------------------------------------------------------------------ lmer
@dataclass(repr=False)
class LmerSummary(_Printed):
    """What ``LmerResult.summary()`` returns; ``print()`` it to see lme4's layout."""

    result: LmerResult

    def lines(self) -> list[str]:
        m = self.result
        how = "REML" if m.reml else "maximum likelihood "
        out = [f"Linear mixed model fit by {how.strip()}. t-tests use Satterthwaite's method ['lmerModLmerTest']",
               f"Formula: {m.formula}", f"   Data: {m.data_name}", ""]
        if m.reml:
            out.append(f"REML criterion at convergence: {m.objective:.1f}")
        else:
            values = [m.aic, m.bic, m.loglik, m.objective]
            out += [" " + line for line in aligned(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                                                   [[f"{v:.1f}" for v in values] + [str(m.nobs - len(m.fixef))]],
                                                   left=0)]
        cells = [f"{v:.4f}" for v in np.quantile(m.residuals.to_numpy() / m.sigma, [0, 0.25, 0.5, 0.75, 1])]
        out += ["", "Scaled residuals: "]
        out += [" " + line for line in aligned(["Min", "1Q", "Median", "3Q", "Max"],
                                               [[c.rjust(max(map(len, cells))) for c in cells]], left=0)]
        out += ["", "Random effects:"] + random_effects_lines(m.varcorr)
        groups = "; ".join(f"{g}, {n}" for g, n in m.ngroups.items())
        out += [f"Number of obs: {m.nobs}, groups:  {groups}", "", "Fixed effects:"]
        table = m.coef_table(ddf="satterthwaite")
        columns = [format_column(table[c]) for c in ("estimate", "std_error")] + [
            [f"{v:.2f}" for v in table["df"]], format_column(table["statistic"]),
            [format_p(v) for v in table["p_value"]]]
        rows = [[t, *e] for t, e in zip(table["term"], zip(*columns))]
        out += aligned(["", "Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"], [list(r) for r in rows])
        return out + self._notes()

    def _notes(self) -> list[str]:
        m = self.result
        notes = []
        if m.reference_levels:
            notes.append("Reference levels: " + ", ".join(f"{v} = {lvl}" for v, lvl in m.reference_levels.items()))
        if m.singular:
            notes.append("boundary (singular) fit: see help('isSingular') in lme4; a variance is zero "
                         "or a correlation +-1")
        if not m.converged:
            notes.append("Model failed to converge: the optimizer stopped without convergence; "
                         "the estimates may be wrong")
        notes += [f"Note: {note}" for note, category in m.design.notes if category is LmerWarning]
        return ([""] + notes) if notes else []


# ------------------------------------------------------------------ glmer
@dataclass(repr=False)
class GlmerSummary(_Printed):
    """What ``GlmerResult.summary()`` returns; ``print()`` it to see lme4's layout."""

    result: GlmerResult

    def lines(self) -> list[str]:
        m = self.result
        how = "Laplace Approximation" if m.nagq == 1 else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {m.nagq}"
        out = [f"Generalized linear mixed model fit by maximum likelihood ({how}) ['glmerMod']",
               f" Family: {m.family}  ( {m.link} )", f"Formula: {m.formula}", f"   Data: {m.data_name}", ""]
        out += aligned(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                       [[f"{v:.1f}" for v in (m.aic, m.bic, m.loglik, m.deviance)] + [str(m.df_resid)]], left=0)
        out += _scaled_residual_lines(m.pearson_residuals.to_numpy())
        out += ["", "Random effects:"] + random_effects_lines(m.varcorr)
        groups = "; ".join(f"{g}, {n}" for g, n in m.ngroups.items())
        out += [f"Number of obs: {m.nobs}, groups:  {groups}", "", "Fixed effects:"]
        table = m.coef_table()
        columns = [format_column(table[c]) for c in ("estimate", "std_error")] + [
            [f"{v:.3f}" for v in table["statistic"]]]
        rows = [[t, *cells, format_p_z(p)] for t, *cells, p in zip(table["term"], *columns, table["p_value"])]
        out += aligned(["", "Estimate", "Std. Error", "z value", "Pr(>|z|)"], rows)
        notes = (["boundary (singular) fit: a variance is zero or a correlation +-1"] if m.singular else []) + \
                (["Model failed to converge: the estimates may be wrong"] if not m.converged else []) + \
                [f"Separation: term {t!r} separates the outcomes" for t in m.separation]
        return out + ([""] + notes if notes else [])
