"""Linear mixed models with lme4's numbers: :func:`lmer` and :class:`LmerResult`.

``lmer()`` is a chain of small stages, as lme4's own (Bates et al. 2015,
section 1.2), and each stage can be called on its own:

1. parse: :func:`mlmcourse.formula.parse_formula` (lme4's formula syntax);
2. design: :func:`lmer_design` returns an :class:`LmerDesign` with the model
   frame, X (collinear columns dropped), Z and Lambda(theta), one random-effect
   block per term in lme4's order (lme4's ``lFormula``);
3. deviance function: :meth:`LmerDesign.deviance` is the profiled REML
   criterion or deviance as a function of theta (lme4's ``mkLmerDevfun``);
4. optimise: :meth:`LmerDesign.fit` minimises it over theta (``optimizeLmer``)
   and shapes the estimates into an :class:`LmerResult` (``mkMerMod``).

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
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.linalg import block_diag

from mlmcourse import _engine, _mixed
from mlmcourse._messages import (
    ConvergenceWarning,
    Fingerprint,
    LmerWarning,
    MlmWarning,
    SingularFitWarning,
    require_type,
)
from mlmcourse._engine import LmerControl, OptInfo
from mlmcourse._summary import LmerSummary
from mlmcourse.design import (
    Coding,
    ModelFrame,
    RandomBlock,
    design_matrix,
    fixed_design,
    group_codes,
    independent_columns,
    model_frame,
    random_design,
)
from mlmcourse.formula import ParsedFormula, parse_formula
from mlmcourse.transforms import evaluate, level_label

__all__ = ["lmer", "lmer_design", "coef_frame", "LmerControl", "OptInfo", "LmerDesign", "LmerResult", "LmerSummary",
           "COEF_COLUMNS", "MlmWarning", "LmerWarning", "SingularFitWarning", "ConvergenceWarning"]

#: Columns of every coefficient table (``coef_table()``) in the package.
COEF_COLUMNS = ["term", "estimate", "std_error", "statistic", "df", "p_value", "conf_low", "conf_high"]


# ---------------------------------------------------------------- the stages
def lmer(formula: str, data: pd.DataFrame, *, reml: bool = True, control: LmerControl | None = None) -> LmerResult:
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
    control : LmerControl, optional
        Optimizer, evaluation limit and gradient tolerance (lme4's
        ``lmerControl()``); the default suits every model of the course.

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
    Stages: parse -> check the data -> design (:func:`lmer_design`) -> deviance
    function -> optimize -> result (:meth:`LmerDesign.fit`). The engine
    (mixedlm's compiled core, see :mod:`mlmcourse._engine`) minimizes lme4's
    profiled REML criterion over theta, on predictors divided internally by
    their root mean square, so that the units of a predictor change no reported
    number beyond its own coefficient's scale. ``fit.optinfo`` says what the
    optimizer did.

    Examples
    --------
    >>> import mlmcourse
    >>> m = lmer("MathAch ~ 1 + (1 | School)", mlmcourse.load("hsb40"))
    >>> round(float(m.fixef["(Intercept)"]), 5), round(m.loglik, 3)
    (12.60468, -6489.969)
    """
    _check_reml(reml)
    if control is not None and not isinstance(control, LmerControl):
        raise TypeError(f"control must be an mlmcourse.LmerControl, not {type(control).__name__}")
    return lmer_design(formula, data).fit(reml=reml, control=control)


def _check_reml(reml) -> None:
    if not isinstance(reml, (bool, np.bool_)):
        raise TypeError(f"reml must be True or False, not {reml!r}")


def lmer_design(formula: str, data: pd.DataFrame) -> LmerDesign:
    """The design of a linear mixed model, before anything is fitted (lme4's ``lFormula``).

    Parameters
    ----------
    formula : str
        lme4 syntax, as for :func:`lmer`.
    data : pandas.DataFrame

    Returns
    -------
    LmerDesign
        The model frame, X, Z, Lambda(theta), the profiled deviance as a
        function of theta, and ``fit()``.

    Warns
    -----
    LmerWarning
        Rows with missing values dropped (at once); collinear columns dropped
        (when the design is fitted).

    Examples
    --------
    >>> import mlmcourse
    >>> d = lmer_design("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> d.X.shape, d.Z.shape, d.theta_lower.tolist()
    ((180, 2), (180, 36), [0.0, -inf, 0.0])
    >>> m = d.fit()
    >>> round(d.deviance(m.theta), 4) == round(m.objective, 4)
    True
    """
    parsed = parse_formula(formula)
    _require_random_part(parsed)
    design = _build_design(parsed, model_frame(parsed, data))
    return replace(design, data_name=str(data.attrs.get("name", "data")))


def _require_random_part(parsed: ParsedFormula) -> None:
    if not parsed.random:
        raise ValueError(
            f"formula {parsed.text!r} has no random-effect term such as (1 | group): use statsmodels OLS / "
            "mlmcourse.estimators.pooled for a model without random effects"
        )


@dataclass(frozen=True, repr=False)
class LmerDesign:
    """A linear mixed model's design: everything needed to fit, predict and refit.

    Made by :func:`lmer_design`. The model is y = X beta + Z b + e with
    b = Lambda(theta) u, u ~ N(0, sigma^2 I) (Bates et al. 2015, eq. 2-4).

    Attributes
    ----------
    parsed : ParsedFormula
        The parsed formula.
    frame : pandas.DataFrame
        The model frame: the rows and columns used.
    coding : Coding
        How the fixed-effect columns were coded (contrasts, levels).
    kept : numpy.ndarray
        Which coded fixed-effect columns are kept (collinear ones dropped).
    blocks : list of RandomBlock
        One block per random term, in lme4's order (most levels first).
    problem : mlmcourse._engine.Problem
        The numbers handed to the engine.
    notes : tuple
        (message, warning class) pairs about the data and the design.
    data_name : str
    """

    parsed: ParsedFormula
    frame: pd.DataFrame
    coding: Coding
    kept: np.ndarray
    blocks: list[RandomBlock]
    problem: _engine.Problem
    notes: tuple = ()  # (message, warning class) about the data and the design
    offset: np.ndarray | None = None  # the offset() terms' sum per row (None without them)
    data_name: str = "data"

    @property
    def fixed_names(self) -> list[str]:
        """Names of the columns of X (lme4's fixed-effect terms)."""
        return [n for n, keep in zip(self.coding.names, self.kept) if keep]

    @property
    def response(self) -> str:
        return self.parsed.response

    @property
    def y(self) -> np.ndarray:
        """The response (lme4's ``getME(m, "y")``)."""
        return self.problem.y

    @property
    def X(self) -> np.ndarray:
        """Fixed-effect model matrix, n x p (``getME(m, "X")``)."""
        return self.problem.X

    @property
    def Z(self) -> sparse.csc_matrix:
        """Random-effect model matrix, n x q, sparse (``getME(m, "Z")``; levels within terms)."""
        return self.problem.Z

    @property
    def theta_lower(self) -> np.ndarray:
        """Lower bounds of theta: 0 for diagonal elements of each T, -inf below (``getME(m, "lower")``)."""
        bounds = []
        for block in self.problem.blocks:
            T = np.full((block.k, block.k), -np.inf)
            np.fill_diagonal(T, 0.0)
            bounds.append(T.T[np.triu_indices(block.k)])
        return np.concatenate(bounds)

    def Lambda(self, theta) -> sparse.csc_matrix:
        """The relative covariance factor Lambda(theta), q x q, sparse (``getME(m, "Lambda")``).

        One k x k lower triangle T per term, repeated for every level of its
        grouping factor; Var(b) = sigma^2 Lambda Lambda'.
        """
        theta = self._theta(theta)
        pieces = [sparse.kron(sparse.identity(b.n_levels), T) for b, T in
                  zip(self.problem.blocks, self.problem.factors(theta))]
        return sparse.block_diag(pieces, format="csc")

    def deviance(self, theta, reml: bool = True) -> float:
        """The profiled REML criterion (or, with reml=False, the deviance) at theta (``mkLmerDevfun``).

        beta and sigma are profiled out, so this is a function of theta alone:
        the function the optimizer minimises (Bates et al. 2015, eq. 34 and 42).
        """
        _check_reml(reml)
        return self.problem.deviance(self._theta(theta), reml=bool(reml))

    def fit(self, reml: bool = True, *, start=None, control: LmerControl | None = None) -> LmerResult:
        """Minimise :meth:`deviance` over theta and return the fitted model (``optimizeLmer``, ``mkMerMod``)."""
        _check_reml(reml)
        with _engine._one_blas_thread():  # small products: one BLAS thread is faster than several competing
            fit = self.problem.fit(reml=bool(reml), start=None if start is None else self._theta(start),
                                   control=control)
        return _shape_result(self, fit, self.data_name)

    def evaluate(self, theta, reml: bool = True) -> LmerResult:
        """The model's estimates at a given theta, without optimising (no warnings)."""
        _check_reml(reml)
        fit = self.problem.evaluate(self._theta(theta), reml=bool(reml))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MlmWarning)
            return _shape_result(self, fit, self.data_name, warn_notes=False)

    def with_response(self, y) -> LmerDesign:
        """The same design with another response (same rows), for refits and simulation."""
        values = np.asarray(y, dtype=float).reshape(-1)
        if values.shape != self.y.shape:
            raise ValueError(f"the new response has {values.size} values; the design has {self.y.size} rows")
        if not np.isfinite(values).all():
            raise ValueError(f"the new response has {int((~np.isfinite(values)).sum())} missing or infinite values")
        frame = self.frame.copy()
        frame[self.response] = values
        return replace(self, frame=frame, problem=self.problem.with_response(values))

    def _theta(self, theta) -> np.ndarray:
        theta = np.atleast_1d(np.asarray(theta, dtype=float))
        lower = self.theta_lower
        if theta.shape != lower.shape:
            raise ValueError(f"theta must have {lower.size} value(s) for this model, not {theta.size}")
        if np.any(theta < lower) or not np.isfinite(theta).all():
            raise ValueError(f"theta {theta.tolist()} is outside its bounds (diagonal elements are >= 0)")
        return theta

    def __repr__(self) -> str:
        return (f"<LmerDesign {self.parsed.text!r}: X {self.X.shape[0]} x {self.X.shape[1]}, "
                f"Z {self.Z.shape[0]} x {self.Z.shape[1]}, {self.theta_lower.size} theta>")


_Design = LmerDesign  # the former private name


def _build_design(parsed: ParsedFormula, frame: ModelFrame) -> LmerDesign:
    X, coding = fixed_design(parsed, frame)
    kept = independent_columns(X)
    notes = [(note, LmerWarning) for note in frame.messages]
    notes += _mixed.rank_notes(coding.names, kept, " (a linear combination of the other columns)")
    blocks = _mixed.lme4_block_order(random_design(parsed, frame))
    notes += [(note, SingularFitWarning) for note in _collinear_random_columns(blocks)]
    offset = frame.offset if parsed.offsets else None
    y = frame.response - frame.offset  # lme4 fits y - offset; fitted values add it back
    _check_response(parsed.response, y, X[:, kept], [n for n, k in zip(coding.names, kept) if k])
    engine_blocks = [_engine.Block(b.codes, len(b.labels), b.columns) for b in blocks]
    problem = _engine.Problem(y, X[:, kept], engine_blocks)
    data = frame.data if parsed.response in frame.data else frame.data.assign(**{parsed.response: frame.response})
    return LmerDesign(parsed, data, coding, kept, blocks, problem, tuple(notes), offset)


def _check_response(name: str, y: np.ndarray, X: np.ndarray, terms: list[str]) -> None:
    """Refuse a response the fixed effects fit exactly, with no residual left (a constant response is
    refused earlier, by the model frame)."""
    if X.shape[1] == 0 or y.size <= X.shape[1]:
        return
    unit = X / np.maximum(np.linalg.norm(X, axis=0), np.finfo(float).tiny)
    residual = y - unit @ np.linalg.lstsq(unit, y, rcond=None)[0]
    if np.linalg.norm(residual) <= 1e-10 * np.linalg.norm(y - y.mean()):
        raise ValueError(f"response {name!r} is fitted exactly by the fixed effects ({', '.join(terms)}): no "
                         "variation is left for the random effects or the residual")


def _collinear_random_columns(blocks: list[RandomBlock]) -> list[str]:
    """Random-effect columns that repeat the term's other columns (a slope of a constant)."""
    notes = []
    for block in blocks:
        independent = independent_columns(block.columns)
        for name in [n for n, keep in zip(block.coding.names, independent) if not keep]:
            notes.append(f"boundary (singular) fit: in the random-effect term ({' + '.join(block.coding.names)} | "
                         f"{block.group}) the column {name!r} is constant or a combination of the term's other "
                         "columns, so its variance cannot be estimated")
    return notes


def _shape_result(design: LmerDesign, fit: _engine.EngineFit, data_name: str, *, warn_notes: bool = True
                  ) -> LmerResult:
    names = design.fixed_names
    frame, parsed = design.frame, design.parsed
    fitted = pd.Series(_linear_predictor(design, fit), index=frame.index, name="fitted")
    y = pd.Series(design.problem.y + _offset(design), index=frame.index)
    flagged = _mixed.singular_terms(design.blocks, fit.scaled_theta)
    notes = list(design.notes) if warn_notes else []
    notes += _mixed.fit_notes(flagged, fit.converged, fit.message)
    singular = bool(flagged) or any(category is SingularFitWarning for _, category in design.notes)
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
        reference_levels=_reference_levels(design.coding), optimizer=fit.optimizer, optinfo=fit.optinfo,
        design=design, _fit=fit,
    )
    for message, category in notes:
        warnings.warn(message, category, stacklevel=4)
    return result


def _offset(design: LmerDesign) -> np.ndarray | float:
    return 0.0 if design.offset is None else design.offset


def _linear_predictor(design: LmerDesign, fit: _engine.EngineFit) -> np.ndarray:
    eta = design.problem.X @ fit.beta + _offset(design)
    for block, b in zip(design.blocks, fit.b):
        eta = eta + np.einsum("ij,ij->i", block.columns, b[block.codes])
    return eta


def _varcorr(design: LmerDesign, fit: _engine.EngineFit) -> pd.DataFrame:
    """lme4's as.data.frame(VarCorr(m)): variances, then covariances, per term; residual last."""
    return _mixed.varcorr_frame(design.blocks, design.problem.factors(fit.theta), fit.sigma**2, residual=fit.sigma)


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
    design : LmerDesign
        The design the model was fitted on (X, Z, Lambda(theta), deviance).
    optinfo : OptInfo or None
        What the optimizer did (stages, evaluations, final gradient, messages);
        None for estimates evaluated at a given theta.
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
    optinfo: _engine.OptInfo | None
    design: LmerDesign = field(repr=False)
    _fit: _engine.EngineFit = field(repr=False)

    @property
    def _design(self) -> LmerDesign:  # the former private name
        return self.design

    @property
    def backend(self) -> _engine.EngineFit:
        """The engine's own fit: theta, beta, conditional modes b, deviance, covariance, optimizer, evaluations."""
        return self._fit

    @property
    def fingerprint(self) -> Fingerprint:
        """The response's name, rows and values, to check that two fits used the same data."""
        return Fingerprint.of(self.model_data[self.response], self.response)

    # ------------------------------------------------------- cheap numbers
    @property
    def sigma2(self) -> float:
        """Residual variance."""
        return self.sigma**2

    @property
    def std_error(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.fixef.index, name="std_error")

    def coef_table(self, ddf: str = "satterthwaite", level: float = 0.95) -> pd.DataFrame:
        """The fixed effects with standard errors, t tests and confidence intervals (lmerTest's table).

        Parameters
        ----------
        ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, default "satterthwaite"
            Degrees of freedom of the t tests: Satterthwaite's (lmerTest's
            default), Kenward-Roger's (which also adjusts the standard errors;
            REML fits), or "asymptotic": the standard normal (df ``inf``), as
            lme4's ``summary()`` t value with a normal p-value.
        level : float, default 0.95
            Confidence level of the intervals (the t quantile with the row's df).

        Returns
        -------
        pandas.DataFrame
            One row per fixed effect; columns term, estimate, std_error,
            statistic (estimate / std_error), df, p_value (two-sided),
            conf_low, conf_high (see :func:`mlmcourse.ddf.coef_table`).

        Examples
        --------
        >>> import mlmcourse
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
        >>> row = m.coef_table(ddf="asymptotic").set_index("term").loc["Days"]
        >>> [round(float(v), 3) for v in row]
        [10.467, 1.546, 6.771, inf, 0.0, 7.438, 13.497]
        >>> round(float(m.coef_table().set_index("term").loc["Days", "df"]), 1)
        17.0
        """
        from mlmcourse import ddf as _ddf

        return _ddf.coef_table(self, ddf=ddf, level=level)

    @property
    def fixef_table(self) -> pd.DataFrame:
        """Deprecated: use ``coef_table()`` (columns term, estimate, std_error, statistic, ...)."""
        warnings.warn("fixef_table is deprecated; use coef_table(), whose 'statistic' column is the t value",
                      FutureWarning, stacklevel=2)
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
        return _mixed.aic(self.objective, self.df)

    @property
    def bic(self) -> float:
        return _mixed.bic(self.objective, self.df, self.nobs)

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
        variances = self.design.problem.conditional_variances(self.theta, self.sigma)
        pieces = []
        for grpvar in dict.fromkeys(b.group for b in self.design.blocks):
            for block, b, cv in zip(self.design.blocks, self._fit.b, variances):
                if block.group != grpvar:
                    continue
                for j, term in enumerate(block.coding.names):
                    pieces.append(pd.DataFrame({"grpvar": grpvar, "term": term, "grp": block.labels,
                                                "condval": b[:, j], "condsd": np.sqrt(cv[:, j, j])}))
        return pd.concat(pieces, ignore_index=True)

    def grouping_factor(self, group: str | None = None) -> str:
        """The grouping factor `group` after checking it (default: the model's only one).

        Raises
        ------
        KeyError
            `group` is not a grouping factor of the model, or it is None and
            the model has several.
        """
        names = list(self.ngroups)
        if group is None and len(names) == 1:
            return names[0]
        if group is None:
            raise KeyError(f"the model has {len(names)} grouping factors {names}; name one with group=...")
        if group not in names:
            raise KeyError(f"group {group!r} is not a grouping factor of this model; choose one of {names}")
        return group

    _grouping = grouping_factor

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
        for block, T in zip(self.design.blocks, self.design.problem.factors(self.theta)):
            if block.group == group:
                names += block.coding.names
                blocks.append(self.sigma2 * T @ T.T)
        return pd.DataFrame(block_diag(*blocks), index=names, columns=names)

    # -------------------------------------------------------------- predict
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
            fixed = pd.Series(self.design.problem.X @ self._fit.beta + _offset(self.design),
                              index=self.fitted.index, name="predicted")
            return self.fitted.rename("predicted") if include_random else fixed
        return _predict_new(self, newdata, include_random)

    # --------------------------------------------------------------- refits
    def refit_ml(self) -> LmerResult:
        """The same model fitted by maximum likelihood (lme4's refitML); self if already ML."""
        if not self.reml:
            return self
        return self.refit(self.design.y, reml=False)

    def refit(self, y, *, reml: bool | None = None) -> LmerResult:
        """The same model fitted to a new response on the same rows (lme4's ``refit(m, newresp)``).

        Parameters
        ----------
        y : array-like
            One value per row of ``model_data``, in its order.
        reml : bool, optional
            Default: as this fit.

        Returns
        -------
        LmerResult
            Started from this fit's theta; warnings about the design are not
            repeated, those about the new fit (singular, convergence) are.

        Examples
        --------
        >>> import mlmcourse
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
        >>> bool(np.allclose(m.refit(m.model_data["Reaction"]).fixef, m.fixef))
        True
        """
        reml = self.reml if reml is None else reml
        _check_reml(reml)
        design = self.design.with_response(y)
        fit = design.problem.fit(reml=bool(reml), start=self.theta)
        return _shape_result(design, fit, self.data_name, warn_notes=False)

    def simulate(self, seed=None, *, nsim: int = 1) -> pd.DataFrame:
        """Responses drawn from the fitted model (lme4's ``simulate(m, nsim, seed)``).

        Parameters
        ----------
        seed : int, numpy.random.Generator or SeedSequence, optional
            A Generator is used as it is (and advanced), so repeated calls
            continue one random stream.
        nsim : int, default 1
            Number of responses.

        Returns
        -------
        pandas.DataFrame
            Index as ``model_data``; columns sim_1, ..., sim_<nsim>, each
            X beta + Z b + e with b ~ N(0, G) and e ~ N(0, sigma^2 I) drawn anew.

        Examples
        --------
        >>> import mlmcourse
        >>> m = lmer("Reaction ~ Days + (1 | Subject)", mlmcourse.load("sleepstudy"))
        >>> m.simulate(1, nsim=2).shape
        (180, 2)
        """
        return _mixed.simulate_frame(self._draw, seed, nsim, self.model_data.index)

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        y = self.design.X @ self._fit.beta
        for block, T in zip(self.design.blocks, self.design.problem.factors(self.theta)):
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


def coef_frame(estimate: pd.Series, std_error: pd.Series, df, level: float = 0.95,
               p_value=None) -> pd.DataFrame:
    """A coefficient table in the package's vocabulary (columns ``COEF_COLUMNS``).

    Parameters
    ----------
    estimate : pandas.Series
        Indexed by term.
    std_error : pandas.Series or array-like
        A Series is aligned with `estimate` by term; an array is taken in order.
    df : float or array-like
        Degrees of freedom of the t reference (``inf``: standard normal).
    level : float, default 0.95
    p_value : array-like, optional
        Two-sided p-values when they come from elsewhere (e.g. cluster-robust
        tests); by default from the t (or normal) distribution.

    Examples
    --------
    >>> row = coef_frame(pd.Series({"x": 2.0}), pd.Series({"x": 1.0}), np.inf).iloc[0]
    >>> [round(float(v), 3) for v in row.drop("term")]
    [2.0, 1.0, 2.0, inf, 0.046, 0.04, 3.96]
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level!r}")
    terms = [str(t) for t in estimate.index]
    if isinstance(std_error, pd.Series):
        std_error = std_error.reindex(estimate.index)
    std_error = np.asarray(std_error, dtype=float).reshape(-1)
    estimate = np.asarray(estimate, dtype=float)
    df = np.broadcast_to(np.asarray(df, dtype=float), estimate.shape).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / std_error
    p_value = 2 * stats.t.sf(np.abs(statistic), df) if p_value is None else np.asarray(p_value, dtype=float)
    half_width = stats.t.ppf(0.5 + level / 2, df) * std_error
    return pd.DataFrame({"term": terms, "estimate": estimate, "std_error": std_error, "statistic": statistic,
                         "df": df, "p_value": p_value.reshape(-1), "conf_low": estimate - half_width,
                         "conf_high": estimate + half_width}, columns=COEF_COLUMNS)


def _result_at_theta(result: LmerResult, theta: np.ndarray) -> LmerResult:
    """The model's estimates at a given theta, no optimization (to check formulas against lme4's output)."""
    return result.design.evaluate(theta, reml=result.reml)


def _predict_new(result: LmerResult, newdata: pd.DataFrame, include_random: bool) -> pd.Series:
    design = result.design
    parsed = design.parsed
    if not isinstance(newdata, pd.DataFrame):
        raise TypeError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
    needed = parsed.fixed_columns + ([c for c in parsed.columns_of([v for t in parsed.random for v in t.variables])
                                      + parsed.grouping_columns] if include_random else [])
    for name in needed:
        if name not in newdata.columns:
            raise KeyError(f"column {name!r} is not in newdata; the model needs {sorted(set(needed))}")
        if newdata[name].isna().any():
            raise ValueError(f"column {name!r} of newdata has {int(newdata[name].isna().sum())} missing value(s)")
    eta = design_matrix(design.coding, newdata)[:, design.kept] @ result._fit.beta
    for name in parsed.offsets:
        eta = eta + evaluate(parsed.specs[name].node, newdata, name)
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
