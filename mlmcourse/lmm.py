"""Linear mixed models with lme4's numbers: :func:`lmer` and :class:`LmerResult`.

``lmer()`` is a chain of small stages, as lme4's own (Bates et al. 2015,
section 1.2): parse the formula, check the data, build the design (X with
collinear columns dropped, one random-effect block per term in lme4's order),
let the engine optimize the profiled REML criterion (or deviance), and shape
the estimates into labelled pandas objects.

Notes
-----
The model is y = X beta + Z b + e, with b ~ N(0, sigma^2 Lambda Lambda') and
e ~ N(0, sigma^2 I). Lambda is block diagonal with one lower triangular factor
T per random-effect term; theta lists the entries of the T's (lme4's
parametrization). Raudenbush & Bryk (2002) write the same model as a level-1
and a level-2 equation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.linalg import block_diag

from mlmcourse import _engine
from mlmcourse.formula import (
    Coding,
    ParsedFormula,
    RandomBlock,
    design_matrix,
    fixed_design,
    group_codes,
    level_label,
    model_frame,
    parse_formula,
    random_design,
)

__all__ = ["lmer", "LmerResult", "LmerSummary", "LmerWarning", "SingularFitWarning", "ConvergenceWarning"]

SINGULAR_TOLERANCE = 1e-4  # lme4's isSingular(tol = 1e-4)
RANK_TOLERANCE = 1e-7  # R's qr() tolerance, used by lme4 to drop collinear columns


class LmerWarning(UserWarning):
    """Something about a mixed-model fit that the user should know (rows or columns dropped)."""


class SingularFitWarning(LmerWarning):
    """A variance estimated as zero or a correlation as +-1 (lme4's 'boundary (singular) fit')."""


class ConvergenceWarning(LmerWarning):
    """The optimizer did not report convergence."""


# ---------------------------------------------------------------- the stages
def lmer(formula: str, data: pd.DataFrame, *, reml: bool = True) -> LmerResult:
    """Fit a linear mixed model by REML or maximum likelihood, as lme4's ``lmer()``.

    Parameters
    ----------
    formula : str
        lme4 syntax, e.g. ``"MathAch ~ SES * Sector + (1 + SES | School)"``.
        Random terms: ``(1|g)``, ``(1+x|g)``, ``(x|g)``, ``(0+x|g)``, ``(1+x||g)``
        (uncorrelated), crossed ``(1|a) + (1|b)``, nested ``(1|a/b)``, ``(1|a:b)``.
        Factor (categorical, string or boolean) columns get treatment contrasts
        with the first level as reference.
    data : pandas.DataFrame
    reml : bool, default True
        REML (lme4's default) or maximum likelihood (needed to compare models
        with different fixed effects).

    Returns
    -------
    LmerResult

    Raises
    ------
    TypeError, KeyError, ValueError
        Bad input, answered before anything is fitted; the message names the
        column, term or grouping factor at fault.

    Warns
    -----
    LmerWarning
        Rows with missing values dropped; collinear columns dropped.
    SingularFitWarning, ConvergenceWarning
        Boundary fit; optimizer without convergence (also shown by ``summary()``).

    Notes
    -----
    Stages: parse -> check the data -> design -> optimize -> result. The engine
    (mixedlm's compiled core, see :mod:`mlmcourse._engine`) minimizes lme4's
    profiled REML criterion over theta.

    Examples
    --------
    >>> import mlmcourse
    >>> m = lmer("MathAch ~ 1 + (1 | School)", mlmcourse.load("hsb40"))
    >>> round(float(m.fixef["(Intercept)"]), 5), round(m.loglik, 3)
    (12.60468, -6489.969)
    """
    if not isinstance(reml, (bool, np.bool_)):
        raise TypeError(f"reml must be True or False, not {reml!r}")
    parsed = parse_formula(formula)
    _require_random_part(parsed)
    frame, notes = model_frame(parsed, data)
    design = _build_design(parsed, frame, notes)
    fit = design.problem.fit(reml=bool(reml))
    return _shape_result(design, fit, data_name=str(data.attrs.get("name", "data")))


def _require_random_part(parsed: ParsedFormula) -> None:
    if not parsed.random:
        raise ValueError(
            f"formula {parsed.text!r} has no random-effect term such as (1 | group): use statsmodels OLS / "
            "mlmcourse.estimators.pooled for a model without random effects"
        )


@dataclass(frozen=True)
class _Design:
    """Everything needed to fit, predict and refit: the model's numbers and their labels."""

    parsed: ParsedFormula
    frame: pd.DataFrame
    coding: Coding
    kept: np.ndarray  # which columns of the coded X are kept (collinear ones dropped)
    blocks: list[RandomBlock]  # in lme4's order (most levels first)
    problem: _engine.Problem
    notes: tuple = ()  # (message, warning class) about the data and the design

    @property
    def fixed_names(self) -> list[str]:
        return [n for n, keep in zip(self.coding.names, self.kept) if keep]


def _build_design(parsed: ParsedFormula, frame: pd.DataFrame, data_notes: list[str]) -> _Design:
    X, coding = fixed_design(parsed, frame)
    kept = _independent_columns(X)
    notes = [(note, LmerWarning) for note in data_notes]
    if not kept.all():
        dropped = [n for n, k in zip(coding.names, kept) if not k]
        notes.append((f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} column(s): "
                      f"{', '.join(dropped)} (a linear combination of the other columns)", LmerWarning))
    blocks = _lme4_block_order(random_design(parsed, frame))
    notes += [(note, SingularFitWarning) for note in _collinear_random_columns(blocks)]
    y = frame[parsed.response].to_numpy(dtype=float)
    engine_blocks = [_engine.Block(b.codes, len(b.labels), b.columns) for b in blocks]
    problem = _engine.Problem(y, X[:, kept], engine_blocks)
    return _Design(parsed, frame, coding, kept, blocks, problem, tuple(notes))


def _collinear_random_columns(blocks: list[RandomBlock]) -> list[str]:
    """Random-effect columns that repeat the term's other columns (a slope of a constant)."""
    notes = []
    for block in blocks:
        independent = _independent_columns(block.columns)
        for name in [n for n, keep in zip(block.coding.names, independent) if not keep]:
            notes.append(f"boundary (singular) fit: in the random-effect term ({' + '.join(block.coding.names)} | "
                         f"{block.group}) the column {name!r} is constant or a combination of the term's other "
                         "columns, so its variance cannot be estimated")
    return notes


def _independent_columns(X: np.ndarray) -> np.ndarray:
    """Keep each column unless it is (numerically) a combination of the kept columns before it."""
    keep = np.zeros(X.shape[1], dtype=bool)
    basis = np.empty((X.shape[0], 0))
    for j in range(X.shape[1]):
        column = X[:, j]
        residual = column - basis @ (basis.T @ column)
        residual -= basis @ (basis.T @ residual)  # re-orthogonalize once for accuracy
        norm = np.linalg.norm(residual)
        if norm > RANK_TOLERANCE * max(np.linalg.norm(column), np.finfo(float).tiny):
            keep[j] = True
            basis = np.column_stack([basis, residual / norm])
    return keep


def _lme4_block_order(blocks: list[RandomBlock]) -> list[RandomBlock]:
    """lme4's mkReTrms: if any term has more levels than the one before, use rev(order(levels))."""
    levels = [len(b.labels) for b in blocks]
    if any(b > a for a, b in zip(levels, levels[1:])):
        order = sorted(range(len(blocks)), key=lambda i: levels[i])  # stable, as R's order()
        return [blocks[i] for i in reversed(order)]
    return blocks


def _shape_result(design: _Design, fit: _engine.EngineFit, data_name: str, *, warn_notes: bool = True
                  ) -> LmerResult:
    names = design.fixed_names
    frame, parsed = design.frame, design.parsed
    fitted = pd.Series(_linear_predictor(design, fit), index=frame.index, name="fitted")
    y = frame[parsed.response].astype(float)
    singular_terms = _singular_terms(design.blocks, fit.theta)
    notes = list(design.notes) if warn_notes else []
    if singular_terms:
        notes.append(("boundary (singular) fit: a variance is estimated as zero or a correlation as +-1 in "
                      f"{', '.join(singular_terms)}; consider simplifying the random part", SingularFitWarning))
    if not fit.converged:
        notes.append((f"the optimizer did not converge ({fit.message}); the estimates may be wrong",
                       ConvergenceWarning))
    singular = bool(singular_terms) or any(category is SingularFitWarning for _, category in design.notes)
    messages = list(dict.fromkeys([note for note, _ in design.notes] + [note for note, _ in notes]))
    result = LmerResult(
        formula=parsed.text, reml=fit.reml, response=parsed.response, nobs=len(frame),
        ngroups={b.group: len(b.labels) for b in design.blocks},
        fixef=pd.Series(fit.beta, index=names, name="estimate"),
        vcov=pd.DataFrame(fit.vcov_beta, index=names, columns=names),
        varcorr=_varcorr(design, fit), theta=fit.theta, sigma=fit.sigma, objective=fit.deviance,
        fitted=fitted, residuals=(y - fitted).rename("residual"), model_data=frame,
        groups={b.group: pd.Series(np.asarray(b.labels, dtype=object)[b.codes], index=frame.index, name=b.group)
                for b in design.blocks},
        singular=singular, converged=fit.converged, messages=messages, data_name=data_name,
        reference_levels=_reference_levels(design.coding), optimizer=fit.optimizer,
        _design=design, _fit=fit,
    )
    for message, category in notes:
        warnings.warn(message, category, stacklevel=3)
    return result


def _linear_predictor(design: _Design, fit: _engine.EngineFit) -> np.ndarray:
    eta = design.problem.X @ fit.beta
    for block, b in zip(design.blocks, fit.b):
        eta = eta + np.einsum("ij,ij->i", block.columns, b[block.codes])
    return eta


def _singular_terms(blocks: list[RandomBlock], theta: np.ndarray) -> list[str]:
    """Terms with a diagonal theta below lme4's isSingular tolerance."""
    out, start = [], 0
    for block in blocks:
        k = len(block.coding.names)
        diagonal = np.cumsum([0] + [k - j for j in range(k - 1)])  # column-major positions of T[j, j]
        if np.any(theta[start + diagonal] < SINGULAR_TOLERANCE):
            out.append(f"({' + '.join(block.coding.names)} | {block.group})")
        start += k * (k + 1) // 2
    return out


def _unique_names(names: list[str]) -> list[str]:
    """R's make.names(unique = TRUE), which lme4 applies when a grouping factor repeats."""
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


def _varcorr(design: _Design, fit: _engine.EngineFit) -> pd.DataFrame:
    """lme4's as.data.frame(VarCorr(m)): variances, then covariances, per term; residual last."""
    rows = []
    groups = _unique_names([b.group for b in design.blocks])
    for group, block, T in zip(groups, design.blocks, design.problem.factors(fit.theta)):
        cov = fit.sigma**2 * T @ T.T
        sd = np.sqrt(np.diag(cov))
        names = block.coding.names
        rows += [(group, n, None, cov[i, i], sd[i]) for i, n in enumerate(names)]
        for j in range(len(names)):
            for i in range(j + 1, len(names)):
                corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                rows.append((group, names[j], names[i], cov[i, j], corr))
    rows.append(("Residual", None, None, fit.sigma**2, fit.sigma))
    grp, var1, var2, vcov, sdcor = zip(*rows)
    return pd.DataFrame({"grp": list(grp), "var1": pd.Series(var1, dtype=object),  # None where lme4 has NA
                         "var2": pd.Series(var2, dtype=object), "vcov": vcov, "sdcor": sdcor})


def _reference_levels(coding: Coding) -> dict[str, str]:
    used = {var for term in coding.terms for var, how in term if how == "contrast"}
    return {var: level_label(coding.levels[var][0]) for var in coding.levels if var in used}


# ---------------------------------------------------------------- the result
@dataclass(eq=False)
class LmerResult:
    """A fitted linear mixed model, with lme4's names for everything.

    Attributes
    ----------
    formula : str
    reml : bool
        True for a REML fit, False for maximum likelihood.
    response : str
    nobs : int
        Rows used (after rows with missing values were dropped).
    ngroups : dict
        Number of groups of each grouping factor.
    fixef : pandas.Series
        Fixed effects, indexed by term ("(Intercept)", "SES", "SectorPublic", ...).
    vcov : pandas.DataFrame
        Their covariance matrix (terms x terms).
    varcorr : pandas.DataFrame
        lme4's ``as.data.frame(VarCorr(m))``: columns grp, var1, var2, vcov, sdcor.
        Variance rows have var2 = None; covariance rows hold the covariance in
        vcov and the correlation in sdcor; the last row is the residual.
    theta : numpy.ndarray
        lme4's relative Cholesky parameters.
    sigma : float
        Residual standard deviation.
    objective : float
        REML criterion (REML fits) or deviance, -2 log-likelihood (ML fits).
    fitted, residuals : pandas.Series
        Fitted values including the random effects, and y - fitted (level 1).
    model_data : pandas.DataFrame
        The rows and columns used.
    groups : dict
        Grouping factor -> Series of group labels aligned with model_data.
    singular, converged : bool
    messages : list of str
        The warnings raised during the fit.
    data_name : str
        Shown after "Data:" by summary() (``data.attrs["name"]`` if set).
    reference_levels : dict
        Reference level of each factor coded by treatment contrasts.
    optimizer : str
        The optimizer whose estimates were kept.
    """

    formula: str
    reml: bool
    response: str
    nobs: int
    ngroups: dict
    fixef: pd.Series
    vcov: pd.DataFrame
    varcorr: pd.DataFrame
    theta: np.ndarray
    sigma: float
    objective: float
    fitted: pd.Series
    residuals: pd.Series
    model_data: pd.DataFrame
    groups: dict
    singular: bool
    converged: bool
    messages: list
    data_name: str
    reference_levels: dict
    optimizer: str
    _design: _Design = field(repr=False)
    _fit: _engine.EngineFit = field(repr=False)

    # ------------------------------------------------------- cheap numbers
    @property
    def sigma2(self) -> float:
        """Residual variance."""
        return self.sigma**2

    @property
    def std_error(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.fixef.index, name="std_error")

    @property
    def fixef_table(self) -> pd.DataFrame:
        """Columns estimate, std_error, t_value (lme4's coefficient table, no p-values)."""
        table = pd.DataFrame({"estimate": self.fixef, "std_error": self.std_error})
        table["t_value"] = table["estimate"] / table["std_error"]
        return table

    @property
    def loglik(self) -> float:
        """Log-likelihood: the REML one for REML fits, as lme4's logLik()."""
        return -self.objective / 2

    @property
    def df(self) -> int:
        """Number of parameters as lme4 counts them: fixed effects + theta + sigma."""
        return len(self.fixef) + len(self.theta) + 1

    @property
    def aic(self) -> float:
        return self.objective + 2 * self.df

    @property
    def bic(self) -> float:
        return self.objective + np.log(self.nobs) * self.df

    # -------------------------------------------------------- random effects
    @cached_property
    def ranef(self) -> pd.DataFrame:
        """lme4's ``as.data.frame(ranef(m, condVar = TRUE))``.

        Returns
        -------
        pandas.DataFrame
            Columns grpvar, term, grp (group label), condval (conditional mode),
            condsd (conditional standard deviation).
        """
        variances = self._design.problem.conditional_variances(self.theta, self.sigma)
        pieces = []
        for grpvar in dict.fromkeys(b.group for b in self._design.blocks):
            for block, b, cv in zip(self._design.blocks, self._fit.b, variances):
                if block.group != grpvar:
                    continue
                for j, term in enumerate(block.coding.names):
                    pieces.append(pd.DataFrame({"grpvar": grpvar, "term": term, "grp": block.labels,
                                                "condval": b[:, j], "condsd": np.sqrt(cv[:, j, j])}))
        return pd.concat(pieces, ignore_index=True)

    def _grouping(self, group: str | None) -> str:
        names = list(dict.fromkeys(b.group for b in self._design.blocks))
        if group is None and len(names) == 1:
            return names[0]
        if group not in names:
            raise KeyError(f"group {group!r} is not a grouping factor of this model; choose one of {names}")
        return group

    def ranef_wide(self, group: str | None = None) -> pd.DataFrame:
        """Conditional modes of one grouping factor: index group label, one column per term."""
        group = self._grouping(group)
        sub = self.ranef[self.ranef["grpvar"] == group]
        terms = list(dict.fromkeys(sub["term"]))
        wide = sub.pivot(index="grp", columns="term", values="condval")
        wide = wide.loc[list(dict.fromkeys(sub["grp"])), terms]
        wide.index.name, wide.columns.name = group, None
        return wide

    def coef(self, group: str | None = None) -> pd.DataFrame:
        """Group-specific coefficients, lme4's coef(): fixef plus the group's random effects.

        Returns
        -------
        pandas.DataFrame
            Index group label; columns the fixed terms (random-only terms first, as lme4).
        """
        wide = self.ranef_wide(group)
        extra = [t for t in wide.columns if t not in self.fixef.index]
        fixed = pd.concat([pd.Series(0.0, index=extra), self.fixef])
        table = pd.DataFrame(np.tile(fixed.to_numpy(), (len(wide), 1)), index=wide.index, columns=fixed.index)
        return table.add(wide.reindex(columns=table.columns, fill_value=0.0))

    def random_covariance(self, group: str | None = None) -> pd.DataFrame:
        """The covariance matrix G of one grouping factor's random effects (terms x terms)."""
        group = self._grouping(group)
        names, blocks = [], []
        for block, T in zip(self._design.blocks, self._design.problem.factors(self.theta)):
            if block.group == group:
                names += block.coding.names
                blocks.append(self.sigma2 * T @ T.T)
        return pd.DataFrame(block_diag(*blocks), index=names, columns=names)

    # -------------------------------------------------------------- predict
    def coef_table(self, ddf: str = "satterthwaite", level: float = 0.95) -> pd.DataFrame:
        """Fixed effects with t tests and t intervals (lmerTest's summary table).

        Parameters
        ----------
        ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, default "satterthwaite"
            Degrees of freedom of the t tests; "asymptotic" gives z tests (df inf).
        level : float, default 0.95

        Returns
        -------
        pandas.DataFrame
            Columns term, estimate, std_error, statistic, df, p_value, conf_low,
            conf_high (see :func:`mlmcourse.ddf.coef_table`).
        """
        from mlmcourse import ddf as _ddf

        return _ddf.coef_table(self, ddf=ddf, level=level)

    def conf_int(self, method: str = "wald", level: float = 0.95, **options) -> pd.DataFrame:
        """Confidence intervals: Wald (fixed effects), profile likelihood or parametric bootstrap.

        Parameters
        ----------
        method : {"wald", "profile", "bootstrap"}, default "wald"
            "wald": estimate -+ z * std_error for the fixed effects. "profile":
            lme4's ``confint()``, for variance components (SD scale),
            correlations, sigma and fixed effects. "bootstrap": percentile
            intervals from the parametric bootstrap (options n_boot, seed).
        level : float, default 0.95

        Returns
        -------
        pandas.DataFrame
            Columns term, estimate, conf_low, conf_high.
        """
        from mlmcourse import profile as _profile

        return _profile.conf_int(self, method=method, level=level, **options)

    def predict(self, newdata: pd.DataFrame | None = None, include_random: bool = True) -> pd.Series:
        """Predictions: X beta, plus Z b when `include_random` (groups not in the fit get 0, with a warning)."""
        if newdata is None:
            fixed = pd.Series(self._design.problem.X @ self._fit.beta, index=self.fitted.index, name="predicted")
            return self.fitted.rename("predicted") if include_random else fixed
        return _predict_new(self, newdata, include_random)

    # --------------------------------------------------------------- refits
    def refit_ml(self) -> LmerResult:
        """The same model fitted by maximum likelihood (lme4's refitML); self if already ML."""
        if not self.reml:
            return self
        fit = self._design.problem.fit(reml=False, start=self.theta)
        return _shape_result(self._design, fit, self.data_name, warn_notes=False)

    def _refit(self, y: np.ndarray, reml: bool | None = None) -> _engine.EngineFit:
        """Fit the same design to a new response (simulation, bootstrap)."""
        problem = self._design.problem.with_response(y)
        return problem.fit(reml=self.reml if reml is None else reml, start=self.theta)

    def _simulate(self, rng: np.random.Generator) -> np.ndarray:
        """One response drawn from the fitted model: X beta + Z b + e, b ~ N(0, G), e ~ N(0, sigma^2)."""
        y = self._design.problem.X @ self._fit.beta
        for block, T in zip(self._design.blocks, self._design.problem.factors(self.theta)):
            b = self.sigma * rng.standard_normal((len(block.labels), T.shape[0])) @ T.T
            y = y + np.einsum("ij,ij->i", block.columns, b[block.codes])
        return y + self.sigma * rng.standard_normal(len(y))

    def summary(self) -> LmerSummary:
        """A summary that prints like lme4's ``summary(m)``."""
        return LmerSummary(self)

    def __repr__(self) -> str:
        method = "REML" if self.reml else "ML"
        flags = ("; singular" if self.singular else "") + ("" if self.converged else "; NOT converged")
        return f"<LmerResult {self.formula!r} by {method}: nobs={self.nobs}, loglik={self.loglik:.4f}{flags}>"


def _result_at_theta(result: LmerResult, theta: np.ndarray) -> LmerResult:
    """The model's estimates at a given theta, no optimization (to check formulas against lme4's output)."""
    fit = result._design.problem.evaluate(np.asarray(theta, dtype=float), reml=result.reml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        return _shape_result(result._design, fit, result.data_name, warn_notes=False)


def _predict_new(result: LmerResult, newdata: pd.DataFrame, include_random: bool) -> pd.Series:
    design = result._design
    parsed = design.parsed
    if not isinstance(newdata, pd.DataFrame):
        raise TypeError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
    needed = list(parsed.variables) + ([c for c in parsed.columns[1:] if c not in parsed.variables]
                                       if include_random else [])
    for name in needed:
        if name not in newdata.columns:
            raise KeyError(f"column {name!r} is not in newdata; the model needs {sorted(set(needed))}")
        if newdata[name].isna().any():
            raise ValueError(f"column {name!r} of newdata has {int(newdata[name].isna().sum())} missing value(s)")
    eta = design_matrix(design.coding, newdata)[:, design.kept] @ result._fit.beta
    unseen: dict[str, set] = {}
    for block, b in zip(design.blocks, result._fit.b if include_random else []):
        codes_new, new_labels = group_codes(newdata, block.grouping)
        row_labels = np.asarray(new_labels, dtype=object)[codes_new]
        position = pd.Index(block.labels).get_indexer(row_labels)
        known = position >= 0
        columns = design_matrix(block.coding, newdata)
        eta = eta + np.where(known, np.einsum("ij,ij->i", columns, b[np.maximum(position, 0)]), 0.0)
        if not known.all():
            unseen.setdefault(block.group, set()).update(row_labels[~known])
    if unseen:
        detail = "; ".join(f"{g}: {sorted(v)[:5]}" for g, v in unseen.items())
        warnings.warn(f"newdata has groups the model was not fitted with ({detail}); their random effects are "
                      "set to 0, so those rows get the population prediction", LmerWarning, stacklevel=3)
    return pd.Series(eta, index=newdata.index, name="predicted")


# --------------------------------------------------------------- summary()
def _column(values, digits: int = 4) -> list[str]:
    """Format numbers with a common number of decimals, as R's format(x, digits = 4).

    The smallest nonzero magnitude gets `digits` significant digits (at most
    three more decimals than the largest needs).
    """
    values = [float(v) for v in values]
    finite = [abs(v) for v in values if np.isfinite(v) and v != 0]
    if not finite:
        return [str(v) for v in values]
    needed = [max(0, digits - 1 - int(np.floor(np.log10(v)))) for v in (min(finite), max(finite))]
    decimals = min(needed[0], needed[1] + 3)
    return [f"{v:.{decimals}f}" for v in values]


def _p_value(p: float) -> str:
    """R's format.pval with 3 significant digits: '< 2e-16' below machine precision."""
    if not np.isfinite(p):
        return "NA"
    return "< 2e-16" if p < 2e-16 else (f"{p:.3g}" if p >= 1e-4 else f"{p:.2e}")


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Left-align the first `left` columns, right-align the rest."""
    cells = [header] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for r in cells:
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append(" " + " ".join(parts).rstrip())
    return out


@dataclass
class LmerSummary:
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
            out += _table(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                          [[f"{v:.1f}" for v in values] + [str(m.nobs - len(m.fixef))]], left=0)
        scaled = np.quantile(m.residuals.to_numpy() / m.sigma, [0, 0.25, 0.5, 0.75, 1])
        out += ["", "Scaled residuals: "]
        cells = [f"{v:.4f}" for v in scaled]
        out += _table(["Min", "1Q", "Median", "3Q", "Max"], [[c.rjust(max(map(len, cells))) for c in cells]], left=0)
        out += ["", "Random effects:"] + self._random_lines()
        groups = "; ".join(f"{g}, {n}" for g, n in m.ngroups.items())
        out += [f"Number of obs: {m.nobs}, groups:  {groups}", "", "Fixed effects:"]
        table = m.coef_table(ddf="satterthwaite")
        columns = [_column(table[c]) for c in ("estimate", "std_error")] + [
            [f"{v:.2f}" for v in table["df"]], _column(table["statistic"]), [_p_value(v) for v in table["p_value"]]]
        rows = [[t, *e] for t, e in zip(table["term"], zip(*columns))]
        header = ["", "Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
        out += [line[1:] for line in _table(header, [list(r) for r in rows])]
        return out + self._notes()

    def _random_lines(self) -> list[str]:
        vc = self.result.varcorr
        variances = vc[vc["var2"].isna()]
        columns = [_column(variances["vcov"]), _column(variances["sdcor"])]
        rows, position = [], 0
        for grp, sub in variances.groupby("grp", sort=False):
            cov = vc[(vc["grp"] == grp) & vc["var2"].notna()]
            for i, name in enumerate(sub["var1"]):
                corr = [_corr(cov, name, other) for other in sub["var1"].iloc[:i]]
                label = "" if pd.isna(name) else name
                rows.append([grp if i == 0 else "", label, columns[0][position], columns[1][position], *corr])
                position += 1
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (width - 5) if width > 4 else [])
        return _table(header, rows, left=2)

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
        notes += [f"Note: {note}" for note, category in m._design.notes if category is LmerWarning]
        return ([""] + notes) if notes else []

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)


def _corr(cov: pd.DataFrame, a: str, b: str) -> str:
    match = cov[((cov["var1"] == a) & (cov["var2"] == b)) | ((cov["var1"] == b) & (cov["var2"] == a))]
    return f"{match['sdcor'].iloc[0]:.2f}" if len(match) else ""
