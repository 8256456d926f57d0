"""Generalized linear mixed models for binary and count outcomes: :func:`glmer`.

``glmer()`` follows lme4's ``glmer()`` (Bates et al. 2015) through the same
stages as :func:`mlmcourse.lmer`: parse the formula (with ``cbind(successes,
failures)`` read here), check the data and the response, build the design,
let the engine maximize the Laplace or adaptive Gauss-Hermite likelihood, and
shape the estimates into labelled pandas objects in the course's vocabulary.

Notes
-----
The model is g(E[y | b]) = X beta + Z b, b ~ N(0, Lambda Lambda'), with y
binomial (link logit or probit) or Poisson (link log) given b. There is no
residual variance: on the latent scale of a logit model the level-1 variance is
fixed at pi^2/3 (1 for a probit), which is why coefficients change scale when
predictors are added (Snijders & Bosker 2012, ch. 17; Raudenbush & Bryk 2002,
ch. 10).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from mlmcourse import _glmm_engine, _mixed
from mlmcourse._engine import Block
from mlmcourse.design import ModelFrame, independent_columns
from mlmcourse.formula import (
    Coding,
    FormulaError,
    ParsedFormula,
    RandomBlock,
    design_matrix,
    fixed_design,
    group_codes,
    is_factor,
    factor_levels,
    level_label,
    model_frame,
    parse_formula,
    random_design,
)
from mlmcourse._messages import LmerWarning
from mlmcourse._summary import GlmerSummary

__all__ = ["glmer", "GlmerResult", "GlmerSummary", "SeparationWarning", "marginal_predict", "attenuation"]

LINKS = {"binomial": ("logit", "probit"), "poisson": ("log",)}
LATENT_VARIANCE = {"logit": np.pi**2 / 3, "probit": 1.0}  # level-1 variance of the latent response
_CBIND = re.compile(r"^\s*cbind\s*\((?P<inside>.*)\)\s*~(?P<rest>.*)$", re.S)
_NAME = r"\s*(`[^`]+`|[A-Za-z_.][A-Za-z0-9_.]*)\s*"


class SeparationWarning(LmerWarning):
    """A fixed-effect term separates the outcomes (its estimate runs off to infinity)."""


# ---------------------------------------------------------------- the stages
def glmer(formula: str, data: pd.DataFrame, family: str = "binomial", *, link: str | None = None,
          nagq: int = 1, weights=None) -> GlmerResult:
    """Fit a generalized linear mixed model by maximum likelihood, as lme4's ``glmer()``.

    Parameters
    ----------
    formula : str
        lme4 syntax, as for :func:`mlmcourse.lmer`. For a binomial model the
        response is a 0/1 or boolean column, a two-level factor (the second
        level is the success, as in R), ``cbind(successes, failures)`` (each a
        column, or ``failures`` written ``trials - successes``), or a
        proportion together with ``weights=`` (the number of trials).
    data : pandas.DataFrame
    family : {"binomial", "poisson"}
    link : {"logit", "probit"} or "log", optional
        Default logit for the binomial, log for the Poisson.
    nagq : int, default 1
        Quadrature points: 1 is the Laplace approximation (lme4's default);
        more (e.g. 10) is adaptive Gauss-Hermite quadrature, available, as in
        lme4, only for a single scalar random effect such as ``(1 | g)``.
    weights : str or array-like, optional
        Binomial trials for a response given as proportions (a column name or
        one number per row).

    Returns
    -------
    GlmerResult

    Raises
    ------
    TypeError, KeyError, ValueError
        Bad input, answered before fitting, naming the column, term or value:
        a response that is not binary or counts, negative or non-integer
        counts, more successes than trials, no random term, ``nagq > 1`` with
        more than one random effect per group.

    Warns
    -----
    SeparationWarning
        A fixed-effect term separates the outcomes (named).
    SingularFitWarning, ConvergenceWarning, LmerWarning
        As :func:`mlmcourse.lmer`.

    Examples
    --------
    >>> import mlmcourse
    >>> m = glmer("use ~ urban + (1 | district)", mlmcourse.load("contraception"))
    >>> round(float(m.fixef["urbanY"]), 2), m.nobs
    (0.65, 1934)
    """
    link = _check_options(family, link, nagq)
    text, cbind = _split_cbind(formula)
    parsed = parse_formula(text)
    if not parsed.random:
        raise ValueError(f"formula {formula!r} has no random-effect term such as (1 | group): without one this is "
                         "an ordinary GLM (statsmodels' GLM or Logit fits it)")
    work, trials = _prepare_response(parsed, data, family, cbind, weights)
    frame = _model_frame(parsed, work)
    design = _build_design(parsed, frame, trials.loc[frame.data.index].to_numpy(dtype=float), family, link)
    _check_quadrature(design, nagq)
    fit = design.problem.fit(nagq)
    return _shape_result(design, fit, str(data.attrs.get("name", "data")), formula)


def _check_options(family, link, nagq) -> str:
    if family not in LINKS:
        raise ValueError(f"family must be 'binomial' or 'poisson', not {family!r}")
    link = LINKS[family][0] if link is None else link
    if link not in LINKS[family]:
        raise ValueError(f"link {link!r} is not available for the {family} family; choose one of {LINKS[family]}")
    if isinstance(nagq, (bool, np.bool_)) or not isinstance(nagq, (int, np.integer)) or nagq < 1:
        raise ValueError(f"nagq must be a whole number of quadrature points >= 1 (1 = Laplace), not {nagq!r}")
    return link


def _split_cbind(formula: str) -> tuple[str, tuple[str, str, str | None] | None]:
    """Read ``cbind(s, f) ~ ...``: the formula for the parser and (successes, failures, trials)."""
    if not isinstance(formula, str):
        raise TypeError(f"the formula must be a string like 'y ~ x + (1 | g)', not {type(formula).__name__}")
    match = _CBIND.match(formula)
    if not match:
        return formula, None
    inside = match.group("inside")
    parts = re.fullmatch(_NAME + "," + _NAME + r"(?:-" + _NAME + ")?", inside)
    if not parts:
        raise FormulaError(f"formula {formula!r}: write the binomial response as cbind(successes, failures) or "
                           "cbind(successes, trials - successes), with column names")
    successes, second, third = (p.strip("`") if p else None for p in parts.groups())
    if third is not None and third != successes:
        raise FormulaError(f"formula {formula!r}: in cbind(successes, trials - successes) the subtracted column "
                           f"must be the successes {successes!r}, not {third!r}")
    name = f"cbind({inside.strip()})"
    return f"`{name}` ~{match.group('rest')}", (successes, second, third and second)


def _prepare_response(parsed: ParsedFormula, data: pd.DataFrame, family: str, cbind, weights):
    """A copy of the data whose response column holds proportions or counts, and the trials per row."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if not data.index.is_unique:
        raise ValueError("data has repeated index labels; use data.reset_index(drop=True) first")
    work = data.copy()
    name = parsed.response
    if cbind is not None:
        if family != "binomial":
            raise ValueError("cbind(successes, failures) is a binomial response; use family='binomial'")
        y, trials = _cbind_response(data, *cbind)
    elif name not in data.columns:
        return work, pd.Series(1.0, index=data.index)  # model_frame names the missing column
    elif family == "poisson":
        if weights is not None:
            raise ValueError("weights= is for binomial proportions; a Poisson model takes counts as the response")
        y, trials = _count_response(data[name], name), pd.Series(1.0, index=data.index)
    else:
        y, trials = _binomial_response(data, name, weights)
    work[name] = y
    work.loc[trials.isna(), name] = np.nan  # rows without trials are dropped with the response's missing values
    return work, trials


def _numeric(values: pd.Series, name: str, what: str) -> pd.Series:
    if is_factor(values):
        raise TypeError(f"column {name!r} holds {values.dtype} values, but {what} must be numbers")
    return values.astype(float)


def _whole(values: pd.Series, name: str, what: str) -> None:
    bad = values.dropna()
    bad = bad[(bad < 0) | (np.abs(bad - np.round(bad)) > 1e-8)]
    if len(bad):
        raise ValueError(f"column {name!r} must hold {what} (whole numbers >= 0); it has {len(bad)} other value(s), "
                         f"e.g. {float(bad.iloc[0]):g} in row {bad.index[0]!r}")


def _count_response(values: pd.Series, name: str) -> pd.Series:
    y = _numeric(values, name, "a Poisson response")
    _whole(y, name, "counts")
    return y


def _cbind_response(data: pd.DataFrame, successes: str, second: str, trials_column: str | None):
    for column in (successes, second):
        if column not in data.columns:
            raise KeyError(f"column {column!r} of cbind() is not in the data")
    s = _numeric(data[successes], successes, "the successes in cbind()")
    other = _numeric(data[second], second, "the second column in cbind()")
    _whole(s, successes, "counts of successes")
    failures = other - s if trials_column else other
    if (failures < 0).any():
        row = failures.index[failures < 0][0]
        raise ValueError(f"row {row!r} has more successes ({successes} = {s[row]:g}) than trials "
                         f"({second} = {other[row]:g})" if trials_column else
                         f"column {second!r} (failures) has negative values, e.g. {other[row]:g} in row {row!r}")
    _whole(failures, second, "counts of failures")
    trials = s + failures
    if (trials == 0).any():
        row = trials.index[trials == 0][0]
        raise ValueError(f"row {row!r} has no trials (0 successes and 0 failures); drop it before fitting")
    return s / trials, trials


def _binomial_response(data: pd.DataFrame, name: str, weights):
    values = data[name]
    if weights is not None:
        trials = _weights(data, weights)
        y = _numeric(values, name, "a proportion response with weights=")
        outside = y[(y < 0) | (y > 1)]
        if len(outside):
            raise ValueError(f"the response {name!r} must be a proportion between 0 and 1 when weights= gives the "
                             f"trials; row {outside.index[0]!r} has {outside.iloc[0]:g}")
        _whole(y * trials, f"{name} * weights", "counts of successes")
        return y, trials
    trials = pd.Series(1.0, index=data.index)
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float), trials
    if is_factor(values):
        levels = factor_levels(values)
        if len(levels) != 2:
            raise ValueError(f"the response {name!r} has {len(levels)} levels {[level_label(x) for x in levels][:6]}; "
                             "a binomial response needs exactly two (the second counts as success)")
        return (values == levels[1]).astype(float).where(values.notna()), trials
    y = values.astype(float)
    other = y.dropna()[~y.dropna().isin([0.0, 1.0])]
    if len(other):
        raise ValueError(f"the response {name!r} is not binary: it has values other than 0 and 1 (e.g. "
                         f"{other.iloc[0]:g} in row {other.index[0]!r}); for counts of successes write "
                         "cbind(successes, failures) or give proportions with weights=")
    return y, trials


def _weights(data: pd.DataFrame, weights) -> pd.Series:
    if isinstance(weights, str):
        if weights not in data.columns:
            raise KeyError(f"weights column {weights!r} is not in the data")
        values = data[weights]
    else:
        values = pd.Series(np.asarray(weights), index=data.index) if np.ndim(weights) == 1 and \
            len(weights) == len(data) else None
        if values is None:
            raise ValueError(f"weights must be a column name or one number per row ({len(data)})")
    values = _numeric(values, "weights", "weights")
    if (values.dropna() <= 0).any():
        raise ValueError("weights (binomial trials) must be positive")
    return values


def _model_frame(parsed: ParsedFormula, data: pd.DataFrame) -> ModelFrame:
    """model_frame(), but an observation-level random effect such as (1 | obs) is allowed, as in glmer."""
    row_terms = [t for t in parsed.random if _one_row_per_group(t, parsed, data)]
    if not row_terms:
        return model_frame(parsed, data)
    others = tuple(t for t in parsed.random if t not in row_terms)
    frame = model_frame(replace(parsed, random=others) if others else replace(parsed, random=()), data)
    table = frame.data.copy()
    for column in dict.fromkeys(c for t in row_terms for c in [*t.variables, *t.grouping]):
        if column not in table.columns:
            table[column] = data.loc[table.index, column]
    return replace(frame, data=table)


def _one_row_per_group(term, parsed: ParsedFormula, data: pd.DataFrame) -> bool:
    columns = [c for c in parsed.columns if c in data.columns]
    if not set(term.grouping) <= set(columns):
        return False
    complete = data[columns].dropna()
    return len(complete) > 1 and not complete.duplicated(subset=list(term.grouping)).any()


@dataclass(frozen=True)
class _Design:
    """Everything needed to fit and predict: the model's numbers and their labels."""

    parsed: ParsedFormula
    frame: pd.DataFrame
    coding: Coding
    kept: np.ndarray
    blocks: list[RandomBlock]
    problem: _glmm_engine.GlmmProblem
    notes: tuple = ()

    @property
    def fixed_names(self) -> list[str]:
        return [n for n, keep in zip(self.coding.names, self.kept) if keep]


def _build_design(parsed, frame: ModelFrame, trials, family, link) -> _Design:
    X, coding = fixed_design(parsed, frame)
    kept = independent_columns(X)
    notes = [(note, LmerWarning) for note in frame.messages] + _mixed.rank_notes(coding.names, kept)
    blocks = _mixed.lme4_block_order(random_design(parsed, frame))
    y = np.asarray(frame.response, dtype=float)
    engine_blocks = [Block(b.codes, len(b.labels), b.columns) for b in blocks]
    problem = _glmm_engine.GlmmProblem(y, trials, X[:, kept], engine_blocks, family, link)
    notes += _separation_notes(problem, [n for n, k in zip(coding.names, kept) if k])
    data = frame.data if parsed.response in frame.data else frame.data.assign(**{parsed.response: frame.response})
    return _Design(parsed, data, coding, kept, blocks, problem, tuple(notes))


def _separation_notes(problem: _glmm_engine.GlmmProblem, names: list[str]) -> list[tuple]:
    if problem.family != "binomial":
        return []
    return [(f"complete or quasi-complete separation: the outcome is constant on one side of term {term!r}, "
             "so its estimate and standard error are not to be trusted", SeparationWarning)
            for term in _separated_terms(problem.X, names, problem.y, problem.trials)]


def _with_response(design: _Design, y: np.ndarray, trials: np.ndarray) -> _Design:
    """The same design with another response (same rows); separation is judged anew."""
    old = design.problem
    problem = _glmm_engine.GlmmProblem(y, trials, old.X, old.blocks, old.family, old.link.name)
    frame = design.frame.copy()
    frame[design.parsed.response] = y
    notes = [n for n in design.notes if n[1] is not SeparationWarning] + _separation_notes(problem, design.fixed_names)
    return replace(design, frame=frame, problem=problem, notes=tuple(notes))


def _new_response(problem: _glmm_engine.GlmmProblem, newresp) -> tuple[np.ndarray, np.ndarray]:
    """A new response for refit(): (proportions or counts, trials), checked against the model's rows."""
    values = newresp.to_numpy() if isinstance(newresp, (pd.Series, pd.DataFrame)) else np.asarray(newresp)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"newresp must hold numbers (or booleans), not {values.dtype} values")
    values, n = values.astype(float), len(problem.y)
    if problem.family == "binomial" and values.ndim == 2 and values.shape[1] == 2:
        _check_rows(values, n)
        _check_whole(values, "successes and failures")
        trials = values.sum(axis=1)
        if (trials == 0).any():
            raise ValueError(f"newresp row {int(np.flatnonzero(trials == 0)[0])} has no trials (0 successes, "
                             "0 failures)")
        return values[:, 0] / trials, trials
    values = values.reshape(-1) if values.ndim == 2 and values.shape[1] == 1 else values
    if values.ndim != 1:
        raise ValueError(f"newresp must be one value per row (or, binomial, two columns: successes and failures); "
                         f"got shape {values.shape}")
    _check_rows(values, n)
    if problem.family == "poisson":
        _check_whole(values, "counts")
        return values, problem.trials
    outside = np.flatnonzero((values < 0) | (values > 1))
    if len(outside):
        raise ValueError(f"newresp must hold 0/1 values or proportions of the model's binomial trials; row "
                         f"{int(outside[0])} has {values[outside[0]]:g}")
    _check_whole(values * problem.trials, "successes (newresp times the model's trials)")
    return values, problem.trials


def _check_rows(values: np.ndarray, n: int) -> None:
    if values.shape[0] != n:
        raise ValueError(f"newresp has {values.shape[0]} rows; the model was fitted to {n} (model_data)")
    bad = np.flatnonzero(~np.isfinite(values.reshape(n, -1)).all(axis=1))
    if len(bad):
        raise ValueError(f"newresp has {len(bad)} missing or infinite value(s), e.g. in row {int(bad[0])}")


def _check_whole(values: np.ndarray, what: str) -> None:
    flat = values.reshape(len(values), -1)
    bad = np.flatnonzero(((flat < 0) | (np.abs(flat - np.round(flat)) > 1e-8)).any(axis=1))
    if len(bad):
        raise ValueError(f"newresp must give {what} as whole numbers >= 0; row {int(bad[0])} has "
                         f"{flat[bad[0]].round(6).tolist()}")


def _check_quadrature(design: _Design, nagq: int) -> None:
    if nagq > 1 and (len(design.blocks) != 1 or design.blocks[0].columns.shape[1] != 1):
        terms = ", ".join(f"({' + '.join(b.coding.names)} | {b.group})" for b in design.blocks)
        raise ValueError(f"nagq > 1 (adaptive quadrature) needs a single random effect per group, such as (1 | g); "
                         f"this model has {terms}: use nagq=1 (the Laplace approximation), as lme4 requires")


def _separated_terms(X: np.ndarray, names: list[str], y: np.ndarray, trials: np.ndarray) -> list[str]:
    """Fixed-effect columns on one side of which every outcome is a success, or every one a failure."""
    successes, failures = y * trials, (1 - y) * trials
    out = []
    for j, name in enumerate(names):
        x = X[:, j]
        if name == "(Intercept)" or np.ptp(x) == 0:
            continue
        values = np.unique(x)
        if len(values) == 2:
            sides = [x == v for v in values]
            if any(successes[s].sum() == 0 or failures[s].sum() == 0 for s in sides):
                out.append(name)
        elif np.all(np.isin(y, (0.0, 1.0))):
            ones, zeros = x[y == 1], x[y == 0]
            if len(ones) and len(zeros) and (ones.min() >= zeros.max() or ones.max() <= zeros.min()):
                out.append(name)
    return out


def _shape_result(design: _Design, fit: _glmm_engine.GlmmFit, data_name: str, formula: str, *,
                  warn_notes: bool = True) -> GlmerResult:
    names = design.fixed_names
    frame, parsed, problem = design.frame, design.parsed, design.problem
    flagged = _mixed.singular_terms(design.blocks, fit.theta)
    notes = list(design.notes if warn_notes else [n for n in design.notes if n[1] is SeparationWarning])
    notes += _mixed.fit_notes(flagged, fit.converged, fit.message)
    loglik = -fit.relative_deviance / 2 + _glmm_engine.saturated_loglik(problem.family, problem.y, problem.trials)
    result = GlmerResult(
        formula=formula, family=problem.family, link=problem.link.name, nagq=fit.nagq, response=parsed.response,
        nobs=len(frame), ngroups={b.group: len(b.labels) for b in design.blocks},
        fixef=pd.Series(fit.beta, index=names, name="estimate"),
        vcov=pd.DataFrame(fit.vcov_beta, index=names, columns=names), varcorr=_varcorr(design, fit),
        theta=fit.theta, loglik=loglik, model_data=frame,
        groups={b.group: pd.Series(np.asarray(b.labels, dtype=object)[b.codes], index=frame.index, name=b.group)
                for b in design.blocks},
        singular=bool(flagged), converged=fit.converged,
        separation=[n for n in names if any(f"term {n!r}" in m for m, c in notes if c is SeparationWarning)],
        messages=list(dict.fromkeys([m for m, _ in design.notes] + [m for m, _ in notes])), data_name=data_name,
        _design=design, _fit=fit,
    )
    for message, category in notes:
        warnings.warn(message, category, stacklevel=3)
    return result


def _varcorr(design: _Design, fit: _glmm_engine.GlmmFit) -> pd.DataFrame:
    """lme4's as.data.frame(VarCorr(m)) for a GLMM: variances and covariances, no residual row."""
    return _mixed.varcorr_frame(design.blocks, design.problem.factors(fit.theta))


# ---------------------------------------------------------------- the result
@dataclass(eq=False)
class GlmerResult:
    """A fitted generalized linear mixed model, with lme4's names.

    Attributes
    ----------
    formula, family, link, response : str
    nagq : int
        1 for the Laplace approximation, more for adaptive Gauss-Hermite quadrature.
    nobs : int
    ngroups : dict
        ``{grouping factor: number of groups}``.
    fixef : pandas.Series
        Fixed effects on the link scale (log-odds for a logit model).
    vcov : pandas.DataFrame
        Their covariance (lme4's Hessian-based default).
    varcorr : pandas.DataFrame
        Columns grp, var1, var2, vcov, sdcor, as lme4's ``as.data.frame(VarCorr(m))``.
    theta : numpy.ndarray
    loglik : float
        Log-likelihood (Laplace or quadrature approximation), with all constants.
    model_data : pandas.DataFrame
    groups : dict
    singular, converged : bool
    separation : list of str
        Fixed-effect terms flagged for separation.
    messages : list of str
    data_name : str
    """

    formula: str
    family: str
    link: str
    nagq: int
    response: str
    nobs: int
    ngroups: dict
    fixef: pd.Series
    vcov: pd.DataFrame
    varcorr: pd.DataFrame
    theta: np.ndarray
    loglik: float
    model_data: pd.DataFrame
    groups: dict
    singular: bool
    converged: bool
    separation: list
    messages: list
    data_name: str
    _design: _Design = field(repr=False)
    _fit: _glmm_engine.GlmmFit = field(repr=False)

    # ------------------------------------------------------- cheap numbers
    @property
    def std_error(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.fixef.index, name="std_error")

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """Fixed effects with Wald z tests and intervals.

        Returns
        -------
        pandas.DataFrame
            Columns term, estimate, std_error, statistic (z), df (inf: a z
            test), p_value (two-sided), conf_low, conf_high.
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, not {level}")
        z = stats.norm.ppf(0.5 + level / 2)
        statistic = self.fixef / self.std_error
        return pd.DataFrame({
            "term": self.fixef.index, "estimate": self.fixef.to_numpy(), "std_error": self.std_error.to_numpy(),
            "statistic": statistic.to_numpy(), "df": np.inf, "p_value": 2 * stats.norm.sf(np.abs(statistic)),
            "conf_low": (self.fixef - z * self.std_error).to_numpy(),
            "conf_high": (self.fixef + z * self.std_error).to_numpy()})

    @property
    def deviance(self) -> float:
        """-2 log-likelihood, the "deviance" lme4's summary() prints.

        lme4's ``deviance()`` function returns something else for a GLMM: the
        sum of squared deviance residuals at the conditional modes, which
        ignores the random effects' distribution (see
        :attr:`conditional_deviance`). Compare models by this one, or by AIC.
        """
        return -2 * self.loglik

    @property
    def conditional_deviance(self) -> float:
        """Sum of squared deviance residuals given the conditional modes (lme4's ``deviance()`` for a GLMM)."""
        problem = self._design.problem
        mu, y, trials = self.fitted.to_numpy(), problem.y, problem.trials
        if self.family == "binomial":
            successes = np.rint(y * trials)
            terms = stats.binom.logpmf(successes, trials, mu) - stats.binom.logpmf(successes, trials, y)
        else:
            terms = stats.poisson.logpmf(y, mu) - stats.poisson.logpmf(y, y)
        return float(-2 * terms.sum())

    @property
    def df(self) -> int:
        """Number of parameters: fixed effects plus theta (no residual variance)."""
        return len(self.fixef) + len(self.theta)

    @property
    def df_resid(self) -> int:
        return self.nobs - self.df

    @property
    def aic(self) -> float:
        return _mixed.aic(self.deviance, self.df)

    @property
    def bic(self) -> float:
        return _mixed.bic(self.deviance, self.df, self.nobs)

    @property
    def fitted(self) -> pd.Series:
        """Conditional means (probabilities or expected counts) including the random effects."""
        return self.predict(type="response")

    @property
    def pearson_residuals(self) -> pd.Series:
        """(y - mu) / sqrt(V(mu) / trials), mu the conditional mean."""
        problem = self._design.problem
        mu = self.fitted.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):  # a separated fit can give mu = 0 or 1
            values = (problem.y - mu) * np.sqrt(problem.trials / _glmm_engine.variance(self.family, mu))
        return pd.Series(values, index=self.model_data.index, name="pearson")

    # -------------------------------------------------------- random effects
    @cached_property
    def ranef(self) -> pd.DataFrame:
        """lme4's ``as.data.frame(ranef(m, condVar = TRUE))``: grpvar, term, grp, condval, condsd."""
        problem = self._design.problem
        variances = problem.conditional_variances(self.theta, self._fit.beta, self._fit.b)
        pieces = []
        for grpvar in dict.fromkeys(b.group for b in self._design.blocks):
            for block, b, cv in zip(self._design.blocks, self._fit.b, variances):
                if block.group == grpvar:
                    pieces += [pd.DataFrame({"grpvar": grpvar, "term": term, "grp": block.labels,
                                             "condval": b[:, j], "condsd": np.sqrt(cv[:, j, j])})
                               for j, term in enumerate(block.coding.names)]
        return pd.concat(pieces, ignore_index=True)

    def coef(self, group: str | None = None) -> pd.DataFrame:
        """Group-specific coefficients (lme4's coef()): fixed effects plus the group's random effects."""
        names = list(dict.fromkeys(b.group for b in self._design.blocks))
        group = names[0] if group is None and len(names) == 1 else group
        if group not in names:
            raise KeyError(f"group {group!r} is not a grouping factor of this model; choose one of {names}")
        sub = self.ranef[self.ranef["grpvar"] == group]
        wide = sub.pivot(index="grp", columns="term", values="condval").loc[list(dict.fromkeys(sub["grp"]))]
        table = pd.DataFrame(np.tile(self.fixef.to_numpy(), (len(wide), 1)), index=wide.index,
                             columns=self.fixef.index)
        table = table.add(wide.reindex(columns=table.columns, fill_value=0.0))
        table.index.name = group
        return table

    # --------------------------------------------------------- predictions
    def predict(self, newdata: pd.DataFrame | None = None, type: str = "link",
                include_random: bool = True) -> pd.Series:
        """Predictions on the link or the response scale.

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Default: the rows used in the fit.
        type : {"link", "response"}
            Log-odds (log count) or probability (expected count).
        include_random : bool, default True
            Add the groups' random effects. A group not seen in the fit gets
            b = 0: the prediction for a typical group (not the population
            average, which :func:`marginal_predict` gives).
        """
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', not {type!r}")
        eta = _linear_predictor(self, self.model_data if newdata is None else newdata, include_random)
        values = self._design.problem.link.inverse(eta) if type == "response" else eta
        index = self.model_data.index if newdata is None else newdata.index
        return pd.Series(values, index=index, name="predicted")

    def prediction_table(self, newdata: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
        """Predictions for a typical group (b = 0) with Wald intervals from the fixed effects' covariance.

        Returns
        -------
        pandas.DataFrame
            Columns link (X beta), std_error (on the link scale), estimate,
            conf_low, conf_high (on the response scale); newdata's index.
        """
        X = _fixed_matrix(self, newdata)
        eta = X @ self.fixef.to_numpy()
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.vcov.to_numpy(), X))
        z = stats.norm.ppf(0.5 + level / 2)
        inverse = self._design.problem.link.inverse
        return pd.DataFrame({"link": eta, "std_error": se, "estimate": inverse(eta),
                             "conf_low": inverse(eta - z * se), "conf_high": inverse(eta + z * se)},
                            index=newdata.index)

    # ------------------------------------------------ teaching quantities
    def icc(self) -> float:
        """Intraclass correlation on the latent scale: var(u0) / (var(u0) + pi^2/3), or + 1 for a probit.

        Uses the random-intercept variances of every grouping factor (with random
        slopes, this is the ICC where the slope variables are 0). Snijders &
        Bosker (2012, chapter 17).
        """
        if self.family != "binomial":
            raise ValueError("a latent-scale ICC is defined here for binomial (logit or probit) models only")
        intercepts = self.varcorr[(self.varcorr["var1"] == "(Intercept)") & self.varcorr["var2"].isna()]
        if intercepts.empty:
            raise ValueError("the model has no random intercept, so there is no intercept variance for an ICC")
        between = float(intercepts["vcov"].sum())
        return between / (between + LATENT_VARIANCE[self.link])

    def median_odds_ratio(self, group: str | None = None) -> float:
        """Median odds ratio exp(sqrt(2 var(u0)) * Phi^-1(0.75)) (Merlo et al. 2006), logit models."""
        if self.link != "logit":
            raise ValueError("the median odds ratio is defined for logit models")
        rows = self.varcorr[(self.varcorr["var1"] == "(Intercept)") & self.varcorr["var2"].isna()]
        if group is not None:
            rows = rows[rows["grp"] == group]
        if len(rows) != 1:
            raise ValueError(f"choose one grouping factor with a random intercept: {list(rows['grp'])}")
        return float(np.exp(np.sqrt(2 * rows["vcov"].iloc[0]) * stats.norm.ppf(0.75)))

    def overdispersion(self) -> pd.DataFrame:
        """Pearson chi-squared over residual df: about 1 if the model's variance fits, above 1 if overdispersed.

        Returns
        -------
        pandas.DataFrame
            One row: method, statistic (Pearson chi-squared), df (nobs minus
            parameters), p_value (upper tail), ratio (statistic / df).
        """
        if self.family == "binomial" and np.all(self._design.problem.trials == 1):
            raise ValueError("overdispersion cannot be judged from 0/1 responses; it applies to counts "
                             "(Poisson, or binomial with several trials)")
        statistic = float(np.sum(self.pearson_residuals**2))
        return pd.DataFrame({"method": ["Pearson chi-squared / residual df"], "statistic": [statistic],
                             "df": [self.df_resid], "p_value": [stats.chi2.sf(statistic, self.df_resid)],
                             "ratio": [statistic / self.df_resid]})

    # --------------------------------------------------------------- refits
    @property
    def backend(self) -> _glmm_engine.GlmmFit:
        """The engine's own fit: theta, beta, conditional modes b, deviance, covariance, convergence, evaluations."""
        return self._fit

    @property
    def trials(self) -> pd.Series:
        """Binomial trials per row (lme4's ``weights(m)``); ones for 0/1 and Poisson responses."""
        return pd.Series(self._design.problem.trials, index=self.model_data.index, name="trials")

    def refit(self, newresp) -> GlmerResult:
        """The same model fitted to a new response on the same rows (lme4's ``refit(m, newresp)``).

        Parameters
        ----------
        newresp : array-like
            One value per row of ``model_data``, in its order, on the scale of
            the model's response: 0/1 values or proportions of the same
            binomial trials (as :meth:`simulate` returns them), or counts for a
            Poisson model. A binomial model also takes two columns, successes
            and failures, whose row totals become the new trials.

        Returns
        -------
        GlmerResult
            Warnings about the design (dropped rows or columns) are not
            repeated; those about the new fit (separation, singular fit,
            convergence) are.

        Examples
        --------
        >>> import mlmcourse
        >>> m = glmer("use ~ urban + (1 | district)", mlmcourse.load("contraception"))
        >>> again = m.refit(m.model_data["use"])
        >>> bool(np.allclose(again.fixef, m.fixef, atol=1e-4))
        True
        """
        y, trials = _new_response(self._design.problem, newresp)
        design = _with_response(self._design, y, trials)
        return _shape_result(design, design.problem.fit(self.nagq), self.data_name, self.formula, warn_notes=False)

    def simulate(self, seed=None, *, nsim: int = 1) -> pd.DataFrame:
        """Responses drawn from the fitted model (lme4's ``simulate(m, nsim, seed)``).

        Each draw takes new random effects b ~ N(0, Lambda Lambda'), the
        conditional mean mu = g^-1(X beta + Z b), and a binomial (with the
        model's trials) or Poisson outcome given mu.

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
            Index as ``model_data``; columns sim_1, ..., sim_<nsim> on the
            scale of the response: 0/1 values or proportions of the trials
            (multiply by :attr:`trials` for counts of successes), or counts.
            Each column can be passed to :meth:`refit`.

        Examples
        --------
        >>> import mlmcourse
        >>> m = glmer("use ~ urban + (1 | district)", mlmcourse.load("contraception"))
        >>> sims = m.simulate(1, nsim=2)
        >>> sims.shape, sorted(np.unique(sims.to_numpy()).tolist())
        ((1934, 2), [0.0, 1.0])
        """
        return _mixed.simulate_frame(self._draw, seed, nsim, self.model_data.index)

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        problem = self._design.problem
        b = [rng.standard_normal((block.n_levels, block.k)) @ T.T
             for block, T in zip(problem.blocks, problem.factors(self.theta))]
        mu = problem.link.inverse(problem.linear_predictor(self._fit.beta, b))
        if self.family == "poisson":
            return rng.poisson(mu).astype(float)
        trials = np.rint(problem.trials).astype(np.int64)
        return rng.binomial(trials, np.clip(mu, 0.0, 1.0)) / trials

    def summary(self) -> GlmerSummary:
        """A summary that prints like lme4's ``summary(m)``."""
        return GlmerSummary(self)

    def __repr__(self) -> str:
        flags = ("; singular" if self.singular else "") + ("" if self.converged else "; NOT converged")
        return (f"<GlmerResult {self.formula!r}, {self.family}({self.link}), nagq={self.nagq}: nobs={self.nobs}, "
                f"loglik={self.loglik:.4f}{flags}>")


def _fixed_matrix(result: GlmerResult, newdata: pd.DataFrame) -> np.ndarray:
    design = result._design
    if not isinstance(newdata, pd.DataFrame):
        raise TypeError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
    for name in design.parsed.variables:
        if name not in newdata.columns:
            raise KeyError(f"column {name!r} is not in newdata; the model needs {sorted(design.parsed.variables)}")
    return design_matrix(design.coding, newdata)[:, design.kept]


def _linear_predictor(result: GlmerResult, newdata: pd.DataFrame, include_random: bool) -> np.ndarray:
    eta = _fixed_matrix(result, newdata) @ result.fixef.to_numpy()
    for block, b in zip(result._design.blocks, result._fit.b if include_random else []):
        for column in block.grouping:
            if column not in newdata.columns:
                raise KeyError(f"column {column!r} is not in newdata; it is needed for the random effects "
                               "(or use include_random=False)")
        codes, labels = group_codes(newdata, block.grouping)
        position = pd.Index(block.labels).get_indexer(np.asarray(labels, dtype=object)[codes])
        columns = design_matrix(block.coding, newdata)
        eta = eta + np.where(position >= 0, np.einsum("ij,ij->i", columns, b[np.maximum(position, 0)]), 0.0)
    return eta


# ------------------------------------------------ marginal (population) view
def marginal_predict(result: GlmerResult, newdata: pd.DataFrame | None = None, *, nodes: int = 40) -> pd.Series:
    """Population-averaged means: the conditional mean averaged over the random effects.

    For each row, mu = E_b[g^-1(x'beta + z'b)] with z'b ~ N(0, sum_k z_k' G_k z_k),
    computed by Gauss-Hermite quadrature. This is what a marginal model (GEE)
    estimates; for a logit model it is flatter than the curve of a typical group.

    Examples
    --------
    >>> import mlmcourse
    >>> m = glmer("use ~ urban + (1 | district)", mlmcourse.load("contraception"))
    >>> new = pd.DataFrame({"urban": pd.Categorical(["N", "Y"])})
    >>> conditional = m.predict(new, type="response", include_random=False)
    >>> bool((marginal_predict(m, new) > conditional).all())
    True
    """
    data = result.model_data if newdata is None else newdata
    eta = _fixed_matrix(result, data) @ result.fixef.to_numpy()
    spread = np.zeros(len(data))
    for block, T in zip(result._design.blocks, result._design.problem.factors(result.theta)):
        Z = design_matrix(block.coding, data)
        spread += np.einsum("ij,jk,ik->i", Z, T @ T.T, Z)
    x, w = np.polynomial.hermite.hermgauss(nodes)
    inverse = result._design.problem.link.inverse
    values = inverse(eta[:, None] + np.sqrt(2 * spread)[:, None] * x[None, :]) @ w / np.sqrt(np.pi)
    return pd.Series(values, index=data.index, name="marginal")


def attenuation(result: GlmerResult) -> pd.Series:
    """Approximate population-averaged coefficients: beta / sqrt(1 + c^2 var(u0)).

    c = 16 sqrt(3) / (15 pi) for the logit (Zeger, Liang & Albert 1988), 1 for
    the probit (exact there); var(u0) the sum of random-intercept variances.

    Examples
    --------
    >>> import mlmcourse
    >>> m = glmer("use ~ urban + (1 | district)", mlmcourse.load("contraception"))
    >>> bool(abs(attenuation(m)["urbanY"]) < abs(m.fixef["urbanY"]))
    True
    """
    if result.family != "binomial":
        raise ValueError("the attenuation formula is for logit and probit models")
    c2 = (16 * np.sqrt(3) / (15 * np.pi)) ** 2 if result.link == "logit" else 1.0
    rows = result.varcorr[(result.varcorr["var1"] == "(Intercept)") & result.varcorr["var2"].isna()]
    return (result.fixef / np.sqrt(1 + c2 * rows["vcov"].sum())).rename("marginal")
