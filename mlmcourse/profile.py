"""Confidence intervals for a mixed model: Wald, profile likelihood and parametric bootstrap.

A Wald interval, estimate -+ z * SE, assumes the log-likelihood is a parabola
around the estimate. For a standard deviation near zero it is not: the interval
can cross zero and its coverage is poor. The profile-likelihood interval holds
all values v of one parameter whose profiled deviance (the deviance minimized
over every other parameter with this one fixed at v) exceeds the minimum by at
most the chi-square(1) quantile; it respects the boundary and is invariant to
reparametrization (Venzon & Moolgavkar 1988; Bates et al. 2015, section 5.1).

Notes
-----
As lme4's ``confint(m, method = "profile")``: a REML fit is first refitted by
maximum likelihood and the ML deviance is profiled; variance components are
profiled on the standard-deviation scale (``sd_(Intercept)|School``), with
correlations (``cor_SES.(Intercept)|School``) and the residual SD (``sigma``);
fixed effects by fixing one coefficient (an offset) and refitting the rest.
Bounds are found by root finding on the exact profile, not by interpolating a
spline as lme4 does.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from mlmcourse import _engine
from mlmcourse.ddf import _Pieces

__all__ = ["conf_int", "profile_conf_int", "variance_parameters", "wald_variance_conf_int"]

CI_COLUMNS = ["term", "estimate", "conf_low", "conf_high"]
METHODS = ("wald", "profile", "bootstrap")


def conf_int(fit, method: str = "wald", level: float = 0.95, **options) -> pd.DataFrame:
    """Confidence intervals by the Wald, profile-likelihood or parametric-bootstrap method.

    Parameters
    ----------
    fit : LmerResult
    method : {"wald", "profile", "bootstrap"}, default "wald"
    level : float, default 0.95
    **options
        For "bootstrap": n_boot (default 200), seed (default 1), n_jobs,
        progress (default False).

    Returns
    -------
    pandas.DataFrame
        Columns term, estimate, conf_low, conf_high; Wald: fixed effects
        only; profile and bootstrap: the variance parameters (lme4's names),
        sigma and the fixed effects.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (1 | Subject)", mlmcourse.load("sleepstudy"))
    >>> conf_int(m, "profile")["term"].tolist()
    ['sd_(Intercept)|Subject', 'sigma', '(Intercept)', 'Days']
    """
    if isinstance(method, (int, float)) and not isinstance(method, bool):
        raise TypeError(f"the first argument of conf_int is the method {list(METHODS)}; pass level={method} by name")
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, not {method!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    if method == "wald":
        z = stats.norm.ppf(0.5 + level / 2)
        se = fit.std_error
        return pd.DataFrame({"term": list(fit.fixef.index), "estimate": fit.fixef.to_numpy(),
                             "conf_low": (fit.fixef - z * se).to_numpy(), "conf_high": (fit.fixef + z * se).to_numpy()})
    if method == "profile":
        return profile_conf_int(fit, level)
    return _bootstrap_conf_int(fit, level, **options)


# ------------------------------------------------------------ variance parameters
def variance_parameters(fit) -> pd.Series:
    """Standard deviations and correlations of each random term, then sigma, with lme4's ``confint`` names.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> variance_parameters(m).round(2).to_dict()
    {'sd_(Intercept)|Subject': 24.74, 'cor_Days.(Intercept)|Subject': 0.07, 'sd_Days|Subject': 5.92, 'sigma': 25.59}
    """
    names, values = _names(fit), []
    for T in fit._design.problem.factors(fit.theta):
        values += list(_sdcor_from_factor(T, fit.sigma))
    return pd.Series(values + [fit.sigma], index=names + ["sigma"], name="estimate")


def _names(fit) -> list[str]:
    out = []
    for block in fit._design.blocks:
        terms = block.coding.names
        for j in range(len(terms)):
            for i in range(j, len(terms)):
                out.append(f"sd_{terms[j]}|{block.group}" if i == j else f"cor_{terms[i]}.{terms[j]}|{block.group}")
    return out


def _sdcor_from_factor(T: np.ndarray, sigma: float) -> np.ndarray:
    """lme4's Cv_to_Sv for one term: the lower triangle (column-major) with SDs on the diagonal, correlations off it."""
    cov = sigma**2 * T @ T.T
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    k = len(sd)
    return np.array([sd[i] if i == j else corr[i, j] for j in range(k) for i in range(j, k)])


def _factors_from_sdcor(pars: np.ndarray, sizes: list[int], sigma: float) -> np.ndarray | None:
    """theta from SDs and correlations (lme4's Sv_to_Cv); None if a correlation matrix is not valid."""
    theta, start = [], 0
    for k in sizes:
        piece = pars[start:start + k * (k + 1) // 2]
        start += k * (k + 1) // 2
        R, sd, pos = np.eye(k), np.zeros(k), 0
        for j in range(k):
            for i in range(j, k):
                if i == j:
                    sd[i] = piece[pos]
                else:
                    R[i, j] = R[j, i] = piece[pos]
                pos += 1
        try:
            C = np.linalg.cholesky(R) if k > 1 else np.ones((1, 1))
        except np.linalg.LinAlgError:
            return None
        T = np.diag(sd) @ C / sigma
        theta += list(T.T[np.triu_indices(k)])
    return np.array(theta)


class _Profiler:
    """The ML deviance as a function of (SDs, correlations, sigma), beta profiled out (lme4's devfun2)."""

    def __init__(self, ml_fit):
        self.fit = ml_fit
        self.pieces = _Pieces(ml_fit)
        self.sizes = [b.k for b in ml_fit._design.problem.blocks]
        self.opt = variance_parameters(ml_fit).to_numpy()
        self.is_cor = np.array([n.startswith("cor_") for n in variance_parameters(ml_fit).index])
        self.base = ml_fit.objective

    def deviance(self, pars: np.ndarray) -> float:
        sigma = pars[-1]
        if sigma <= 0 or np.any(pars[:-1][~self.is_cor[:-1]] < 0) or np.any(np.abs(pars[:-1][self.is_cor[:-1]]) >= 1):
            return np.inf
        theta = _factors_from_sdcor(pars[:-1], self.sizes, sigma)
        if theta is None:
            return np.inf
        return self.pieces.deviance(np.append(theta, sigma))

    def bounds(self, skip: int) -> list:
        out = [(-1 + 1e-10, 1 - 1e-10) if c else (0.0, None) for c in self.is_cor]
        out[-1] = (1e-10, None)
        return [b for i, b in enumerate(out) if i != skip]

    def profile(self, k: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """min over the other parameters of the deviance with parameter k fixed at value."""
        def objective(rest):
            return self.deviance(np.insert(rest, k, value))

        if len(start) == 1:
            return objective(np.empty(0)), start
        best = None
        for begin in self._starts(k, value, start):
            result = optimize.minimize(objective, np.delete(begin, k), method="L-BFGS-B", bounds=self.bounds(k),
                                       options={"ftol": 1e-12, "gtol": 1e-7, "maxiter": 2000})
            if best is None or result.fun < best.fun:
                best = result
        return float(best.fun), np.insert(best.x, k, value)

    def _starts(self, k: int, value: float, start: np.ndarray) -> list[np.ndarray]:
        """The warm start, and, if another SD sits at zero, one with that SD moved off the boundary.

        An SD at exactly zero has a zero gradient (it enters the model squared), so a local
        optimizer never leaves it; when the profiled parameter moves, that SD may have to grow
        (nested terms that can stand in for each other), which only the second start finds.
        """
        sds = ~self.is_cor
        sds[-1] = False
        sds[k] = False
        tiny = sds & (start < 1e-3 * start[-1])
        if not tiny.any():
            return [start]
        moved = start.copy()
        moved[tiny] = max(abs(self.opt[k] - value), 0.1 * start[-1])
        return [start, moved]


def _bisect(f, a: float, b: float, steps: int = 40) -> float:
    """Bisection for the crossing between a (f < 0) and b (f >= 0), re-evaluating f at each midpoint."""
    for _ in range(steps):
        middle = (a + b) / 2
        if f(middle) < 0:
            a = middle
        else:
            b = middle
    return (a + b) / 2


def _bracket_root(f, start: float, step: float, limit: float | None) -> float:
    """The first crossing of f (negative at start) going from start by steps of `step` (sign gives the side)."""
    a, fa = start, f(start)
    for _ in range(60):
        b = a + step
        if limit is not None and (b - limit) * np.sign(step) >= 0:
            b = limit
        fb = f(b)
        if fb >= 0:
            try:
                return optimize.brentq(f, a, b, xtol=1e-7 * max(1e-3, abs(b)), rtol=1e-7)
            except ValueError:  # the inner optimum moved between calls (a flat profile): bisect instead
                return _bisect(f, a, b)
        if b == limit:
            return limit
        a, fa, step = b, fb, step * 2
    return np.nan


def _wald_steps(profiler: _Profiler, cutoff: float) -> np.ndarray:
    """sqrt(cutoff) x the Wald standard errors from the deviance's curvature: first guesses of the bounds."""
    from mlmcourse.ddf import hessian

    inside = np.where(profiler.is_cor, np.clip(profiler.opt, -0.99, 0.99), np.maximum(profiler.opt, 1e-3 * profiler.opt[-1]))
    H = hessian(profiler.deviance, inside, levels=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(np.abs(np.diag(2 * np.linalg.pinv(H))))
    fallback = np.where(profiler.is_cor, 0.1, 0.25 * np.abs(inside))
    return np.where(np.isfinite(se) & (se > 0), np.sqrt(cutoff) * se, fallback)


def _variance_bounds(profiler: _Profiler, cutoff: float) -> list[tuple[float, float]]:
    out = []
    opt, steps = profiler.opt, _wald_steps(profiler, cutoff)
    for k, value in enumerate(opt):
        state = {"start": opt.copy()}

        def f(v, k=k, state=state):
            dev, state["start"] = profiler.profile(k, v, state["start"])
            return dev - profiler.base - cutoff

        limits = (-1.0, 1.0) if profiler.is_cor[k] else (0.0, None)
        bounds = []
        for sign, limit in ((-1, limits[0]), (1, limits[1])):
            state["start"] = opt.copy()
            if limit is not None and abs(value - limit) < 1e-8:
                bounds.append(limit)
                continue
            bounds.append(_bracket_root(f, value, sign * steps[k], limit))
        out.append(tuple(bounds))
    return out


def _fixed_bounds(ml_fit, cutoff: float) -> list[tuple[float, float]]:
    problem = ml_fit._design.problem
    X, y, out = problem.X, problem.y, []
    for j, (value, se) in enumerate(zip(ml_fit.fixef.to_numpy(), ml_fit.std_error.to_numpy())):
        reduced = _engine.Problem(y, np.delete(X, j, axis=1), problem.blocks)

        def f(v, j=j, reduced=reduced):
            fit = reduced.with_response(y - v * X[:, j]).fit(reml=False, start=ml_fit.theta)
            return fit.deviance - ml_fit.objective - cutoff

        out.append((_bracket_root(f, value, -se, None), _bracket_root(f, value, se, None)))
    return out


def profile_conf_int(fit, level: float = 0.95) -> pd.DataFrame:
    """Profile-likelihood intervals, lme4's ``confint(m, method = "profile")``.

    Parameters
    ----------
    fit : LmerResult
        REML fits are refitted by maximum likelihood first (as lme4 does).
    level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        One row per parameter: SDs and correlations of the random terms,
        sigma, then the fixed effects; columns term, estimate (the ML
        estimate the profile is centred on), conf_low, conf_high. An SD whose
        profile stays below the cutoff down to zero gets conf_low 0; a
        correlation that reaches -1 or 1 gets that limit.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (1 | Subject)", mlmcourse.load("sleepstudy"))
    >>> profile_conf_int(m).round(2)["conf_low"].tolist()
    [26.01, 27.81, 231.99, 8.89]
    """
    cutoff = stats.chi2.ppf(level, 1)
    with warnings.catch_warnings(), _engine._one_blas_thread():
        warnings.simplefilter("ignore")
        ml_fit = fit.refit_ml()
        profiler = _Profiler(ml_fit)
        variance = _variance_bounds(profiler, cutoff)
        fixed = _fixed_bounds(ml_fit, cutoff)
    names = list(variance_parameters(ml_fit).index) + list(ml_fit.fixef.index)
    estimate = np.concatenate([profiler.opt, ml_fit.fixef.to_numpy()])
    low, high = zip(*(variance + fixed))
    return pd.DataFrame({"term": names, "estimate": estimate, "conf_low": low, "conf_high": high})


def wald_variance_conf_int(fit, level: float = 0.95) -> pd.DataFrame:
    """Wald intervals for the SDs, correlations and sigma: estimate -+ z * SE on the SD scale (ML).

    The standard errors come from the curvature of the ML deviance at its
    minimum, 2 H^-1 in the (SD, correlation, sigma) coordinates. Shown to
    compare with the profile interval: near zero it is symmetric and can
    reach below zero, where no SD lies.

    Returns
    -------
    pandas.DataFrame
        Columns term, estimate, conf_low, conf_high (variance parameters only).

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (1 | Subject)", mlmcourse.load("sleepstudy"))
    >>> wald_variance_conf_int(m)["term"].tolist()
    ['sd_(Intercept)|Subject', 'sigma']
    """
    from mlmcourse.ddf import hessian

    with warnings.catch_warnings(), _engine._one_blas_thread():
        warnings.simplefilter("ignore")
        ml_fit = fit.refit_ml()
        profiler = _Profiler(ml_fit)
        H = hessian(profiler.deviance, profiler.opt)
    se = np.sqrt(np.diag(2 * np.linalg.pinv(H)))
    z = stats.norm.ppf(0.5 + level / 2)
    return pd.DataFrame({"term": list(variance_parameters(ml_fit).index), "estimate": profiler.opt,
                         "conf_low": profiler.opt - z * se, "conf_high": profiler.opt + z * se})


# ------------------------------------------------------------------ bootstrap
def _bootstrap_conf_int(fit, level: float, n_boot: int = 200, seed: int = 1, n_jobs: int = 1,
                        progress: bool = False) -> pd.DataFrame:
    """Percentile intervals from the parametric bootstrap (lme4's ``confint(m, method = "boot")``)."""
    from mlmcourse.inference import parametric_bootstrap

    def statistic(refit):
        return pd.concat([variance_parameters(refit), refit.fixef])

    draws = parametric_bootstrap(fit, statistic, n_boot=n_boot, seed=seed, n_jobs=n_jobs, progress=progress)
    estimate = statistic(fit)
    alpha = (1 - level) / 2
    return pd.DataFrame({"term": list(estimate.index), "estimate": estimate.to_numpy(),
                         "conf_low": draws[estimate.index].quantile(alpha).to_numpy(),
                         "conf_high": draws[estimate.index].quantile(1 - alpha).to_numpy()})
