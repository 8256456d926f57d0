"""Publication tables: several mixed-model fits side by side.

One column per model, one row per fixed effect ("estimate (standard error)"),
then the variance components and the fit statistics, as R's ``modelsummary``
or ``texreg`` print them; written out as Markdown, HTML or LaTeX.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

__all__ = ["ModelTable", "model_table"]

SECTIONS = ("fixed", "random", "fit")
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "|": r"$|$"}


@dataclass(frozen=True)
class ModelTable:
    """A formatted comparison of fits.

    Attributes
    ----------
    table : pandas.DataFrame
        Text cells; index ``row`` (the row labels), one column per model, and
        a first column ``section`` ("fixed", "random" or "fit"). An empty
        cell means the model does not have that term.
    notes : list of str
        Lines printed under the table (what the cells hold).
    """

    table: pd.DataFrame
    notes: list

    @property
    def models(self) -> list[str]:
        """The model names, in column order."""
        return [c for c in self.table.columns if c != "section"]

    def to_markdown(self) -> str:
        """The table as a GitHub/MyST Markdown pipe table, notes below."""
        def cell(text: str) -> str:
            return str(text).replace("|", "\\|")
        header = "| | " + " | ".join(cell(m) for m in self.models) + " |"
        rule = "|:--|" + "--:|" * len(self.models)
        lines = [header, rule]
        for section in SECTIONS:
            rows = self.table[self.table["section"] == section]
            for label, row in rows.iterrows():
                lines.append("| " + cell(label) + " | " + " | ".join(cell(row[m]) for m in self.models) + " |")
        return "\n".join(lines + [""] + self.notes)

    def to_html(self) -> str:
        """The table as an HTML ``<table>`` with one ``<tbody>`` per section."""
        head = "".join(f"<th>{html.escape(m)}</th>" for m in self.models)
        parts = [f'<table class="model-table">\n<thead><tr><th></th>{head}</tr></thead>']
        for section in SECTIONS:
            rows = self.table[self.table["section"] == section]
            body = "".join(
                f"<tr><th>{html.escape(str(label))}</th>"
                + "".join(f"<td>{html.escape(str(row[m]))}</td>" for m in self.models) + "</tr>\n"
                for label, row in rows.iterrows())
            parts.append(f'<tbody class="{section}">\n{body}</tbody>')
        notes = "<br>".join(html.escape(n) for n in self.notes)
        parts.append(f'<tfoot><tr><td colspan="{len(self.models) + 1}">{notes}</td></tr></tfoot>\n</table>')
        return "\n".join(parts)

    def to_latex(self) -> str:
        """The table as a LaTeX ``tabular`` (booktabs rules), notes below."""
        lines = [r"\begin{tabular}{l" + "r" * len(self.models) + "}", r"\toprule",
                 " & " + " & ".join(_latex(m) for m in self.models) + r" \\", r"\midrule"]
        for k, section in enumerate(SECTIONS):
            rows = self.table[self.table["section"] == section]
            if k and len(rows):
                lines.append(r"\midrule")
            lines += [_latex(label) + " & " + " & ".join(_latex(row[m]) for m in self.models) + r" \\"
                      for label, row in rows.iterrows()]
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [r"\par\smallskip {\footnotesize " + _latex(n) + "}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_markdown()


def _latex(text) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text)).replace("\u2212", "$-$")


def _number(value: float, digits: int) -> str:
    """Fixed-point text with a true minus sign; empty for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}".replace("-", "\u2212")


def _named_fits(fits) -> dict:
    from mlmcourse.lmm import LmerResult

    if isinstance(fits, Mapping):
        named = {str(k): v for k, v in fits.items()}
    elif isinstance(fits, Sequence) and not isinstance(fits, str):
        named = {f"({k + 1})": fit for k, fit in enumerate(fits)}
    else:
        raise TypeError(f"fits must be a dict {{name: fit}} or a list of fits, not {type(fits).__name__}")
    if not named:
        raise ValueError("fits is empty: give at least one fitted model")
    for name, fit in named.items():
        if not isinstance(fit, LmerResult):
            raise TypeError(f"model {name!r} is a {type(fit).__name__}, not a fit from mlmcourse.lmer")
    return named


def _fixed_rows(named: dict, digits: int) -> dict:
    rows: dict = {}
    for name, fit in named.items():
        for term in fit.fixef.index:
            text = f"{_number(fit.fixef[term], digits)} ({_number(fit.std_error[term], digits)})"
            rows.setdefault(term, {})[name] = text
    return rows


def _random_label(grp: str, var1, var2) -> str:
    if grp == "Residual":
        return "var: residual"
    if var2 is None or (isinstance(var2, float) and math.isnan(var2)):
        return f"var: {var1} | {grp}"
    return f"cov: {var1}, {var2} | {grp}"


def _random_rows(named: dict, digits: int) -> dict:
    rows: dict = {}
    for name, fit in named.items():
        vc = fit.varcorr
        for grp, var1, var2, vcov in zip(vc["grp"], vc["var1"], vc["var2"], vc["vcov"]):
            rows.setdefault(_random_label(grp, var1, var2), {})[name] = _number(vcov, digits + 1)
    residual = rows.pop("var: residual")
    rows["var: residual"] = residual
    return rows


def _fit_rows(named: dict) -> dict:
    rows: dict = {"observations": {n: f"{f.nobs:,}" for n, f in named.items()}}
    for name, fit in named.items():
        for factor, count in fit.ngroups.items():
            rows.setdefault(f"groups: {factor}", {})[name] = f"{count:,}"
    rows["estimation"] = {n: "REML" if f.reml else "ML" for n, f in named.items()}
    rows["log-likelihood"] = {n: _number(f.loglik, 1) for n, f in named.items()}
    rows["AIC"] = {n: _number(f.aic, 1) for n, f in named.items()}
    rows["BIC"] = {n: _number(f.bic, 1) for n, f in named.items()}
    return rows


def model_table(fits, *, digits: int = 2) -> ModelTable:
    """Several fits side by side, ready for a paper.

    Parameters
    ----------
    fits : dict or list of LmerResult
        ``{"name": fit, ...}`` (the names head the columns), or a list
        (columns "(1)", "(2)", ...).
    digits : int, default 2
        Decimals of the fixed effects and standard errors; variance
        components get one more.

    Returns
    -------
    ModelTable
        ``table``: one row per fixed effect ("estimate (standard error)"),
        per variance or covariance ("var: term | group", "cov: term, term |
        group", last "var: residual") and per fit statistic (observations,
        groups of each factor, estimation method, log-likelihood, AIC, BIC);
        ``to_markdown()``, ``to_html()``, ``to_latex()`` write it out.

    Notes
    -----
    The layout of ``modelsummary::msummary()`` and ``texreg::texreg()`` in R
    and of ``esttab`` in Stata. Log-likelihoods of REML fits with different
    fixed effects are not comparable; the table says which criterion each
    column used.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.lmm import lmer
    >>> hs = mlmcourse.load("hsb40")
    >>> m0 = lmer("MathAch ~ 1 + (1 | School)", hs)
    >>> m1 = lmer("MathAch ~ SES + (1 | School)", hs)
    >>> out = model_table({"empty": m0, "SES": m1})
    >>> out.table.loc["SES", "SES"], out.table.loc["SES", "empty"]
    ('2.43 (0.21)', '')
    >>> print(out.to_markdown().splitlines()[0])
    | | empty | SES |
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a whole number >= 0, not {digits!r}")
    named = _named_fits(fits)
    blocks = {"fixed": _fixed_rows(named, digits), "random": _random_rows(named, digits),
              "fit": _fit_rows(named)}
    records = [{"row": label, "section": section, **{n: cells.get(n, "") for n in named}}
               for section, rows in blocks.items() for label, cells in rows.items()]
    table = pd.DataFrame(records, columns=["row", "section", *named]).set_index("row")
    notes = ["Fixed effects: estimate (standard error). Variance components: variances and covariances."]
    return ModelTable(table=table, notes=notes)
