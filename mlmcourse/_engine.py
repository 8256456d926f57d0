"""The numerical engine behind :func:`mlmcourse.lmer`, behind one door.

Everything mlmcourse needs from the engine passes through this module: numbers
in (the response y, the fixed-effect matrix X, one block of random-effect
columns per term), numbers out (theta, beta, sigma, the random effects, the
deviance). Swapping the engine means rewriting this module only.

The engine is the package ``mixedlm``, whose compiled (Rust) core evaluates
lme4's profiled deviance by penalized least squares (Bates et al. 2015). The
fit refuses to run if that compiled core is not the one in use, so a silent
pure-Python fallback can never change the course's numbers.

Notes
-----
Parametrization as in lme4: each random term with k columns has a lower
triangular relative covariance factor T (k x k), its theta the lower triangle
of T in column-major order, and the term's covariance is sigma^2 T T'.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass, field, replace
from importlib import metadata

import numpy as np
from scipy import linalg, sparse
from scipy.sparse.linalg import splu

__all__ = ["Block", "EngineFit", "LmerControl", "OptInfo", "Problem", "backend"]

ENGINE = "mixedlm"
#: Optimizers that :class:`LmerControl` accepts.
OPTIMIZERS = ("auto", "L-BFGS-B", "COBYQA")
_THREADPOOLS = None


def _one_blas_thread():
    """Course-sized problems run faster on one BLAS thread than on several competing ones.

    Uses threadpoolctl when it is installed, else changes nothing.
    """
    global _THREADPOOLS
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - optional speed-up
        return contextlib.nullcontext()
    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class LmerControl:
    """How :func:`mlmcourse.lmer` optimizes, as lme4's ``lmerControl()``.

    Parameters
    ----------
    optimizer : {"auto", "L-BFGS-B", "COBYQA"}, default "auto"
        "auto": L-BFGS-B on the exact gradient of the profiled objective; when
        it stops short (no convergence, a large final gradient, a variance of a
        correlated term near zero) COBYQA (a successor of lme4's BOBYQA) runs
        from the same start and L-BFGS-B restarts from the better point. The
        lowest objective wins. "L-BFGS-B" or "COBYQA" run that method alone.
    max_evaluations : int, default 1000
        Limit on objective evaluations (and iterations) of each stage.
    gradient_tolerance : float, default 2e-3
        A fit counts as converged only if the optimizer reports success and the
        largest absolute gradient of the objective (projected on the bounds,
        over the internally scaled theta) is at most this (the tolerance of
        lme4's gradient check), or at most 1e-7 times the objective, the size
        of the gradient's own rounding error on large data sets.

    Examples
    --------
    >>> LmerControl(optimizer="COBYQA", max_evaluations=5000)
    LmerControl(optimizer='COBYQA', max_evaluations=5000, gradient_tolerance=0.002)
    """

    optimizer: str = "auto"
    max_evaluations: int = 1000
    gradient_tolerance: float = 2e-3

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, not {self.optimizer!r}")
        if isinstance(self.max_evaluations, bool) or not isinstance(self.max_evaluations, (int, np.integer)) \
                or self.max_evaluations < 1:
            raise ValueError(f"max_evaluations must be a positive integer, not {self.max_evaluations!r}")
        if not (isinstance(self.gradient_tolerance, (int, float)) and np.isfinite(self.gradient_tolerance)
                and self.gradient_tolerance > 0):
            raise ValueError(f"gradient_tolerance must be a positive number, not {self.gradient_tolerance!r}")


@dataclass(frozen=True)
class OptInfo:
    """What the optimizer did (lme4's ``m@optinfo``).

    Attributes
    ----------
    optimizer : str
        The method whose estimates were kept.
    evaluations : int
        Objective evaluations over all stages.
    max_gradient : float
        Largest absolute gradient of the objective at the estimates (over the
        internally scaled theta, projected on the bounds).
    converged : bool
        The optimizer reported success and ``max_gradient`` is within the
        tolerance of :class:`LmerControl`.
    stages : tuple of str
        The stages run, in order, e.g. ``("L-BFGS-B",)`` or
        ``("L-BFGS-B", "COBYQA", "L-BFGS-B restart")``.
    messages : tuple of str
        The closing message of each stage.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> m.optinfo.optimizer, m.optinfo.stages, m.optinfo.converged
    ('L-BFGS-B', ('L-BFGS-B',), True)
    """

    optimizer: str
    evaluations: int
    max_gradient: float
    converged: bool
    stages: tuple = ()
    messages: tuple = ()

    def __repr__(self) -> str:
        state = "converged" if self.converged else "NOT converged"
        return (f"<OptInfo {self.optimizer}: {state}, {self.evaluations} evaluations, "
                f"max|gradient| {self.max_gradient:.2g}, stages {' -> '.join(self.stages)}>")


@functools.lru_cache(maxsize=1)
def backend() -> str:
    """Describe the engine in use; raise if its compiled core is not available (checked once).

    Returns
    -------
    str
        e.g. ``"mixedlm 1.3.0 (compiled core: _rust.abi3.so)"``.

    Raises
    ------
    RuntimeError
        When mixedlm's compiled extension cannot be imported or mixedlm would
        fall back to its pure-Python code.
    """
    from mixedlm.estimation import reml

    try:
        from mixedlm import _rust
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError(f"the compiled core of mixedlm cannot be loaded ({exc}); reinstall mixedlm") from exc
    path = getattr(_rust, "__file__", "") or ""
    if not reml._HAS_RUST or not path.endswith((".so", ".pyd", ".dylib")):
        raise RuntimeError("mixedlm is not using its compiled core; reinstall mixedlm")
    return f"{ENGINE} {metadata.version(ENGINE)} (compiled core: {path.rsplit('/', 1)[-1]})"


@dataclass(frozen=True)
class Block:
    """One random-effect term as numbers.

    Attributes
    ----------
    codes : numpy.ndarray
        Group index of each row, 0 .. n_levels-1.
    n_levels : int
    columns : numpy.ndarray
        The term's columns (rows x k); ``(1 + x | g)`` has k = 2.
    """

    codes: np.ndarray
    n_levels: int
    columns: np.ndarray

    @property
    def k(self) -> int:
        return self.columns.shape[1]

    def z_matrix(self) -> sparse.csc_matrix:
        """Z for this term: columns level-major (level 0's k columns first), as lme4."""
        n = len(self.codes)
        rows = np.repeat(np.arange(n), self.k)
        cols = (self.codes[:, None] * self.k + np.arange(self.k)).ravel()
        return sparse.csc_matrix((self.columns.ravel(), (rows, cols)), shape=(n, self.n_levels * self.k))


@dataclass(frozen=True)
class EngineFit:
    """What the engine returns for one fit.

    Attributes
    ----------
    theta : numpy.ndarray
        lme4's theta (per block the lower triangle of T, column-major).
    beta : numpy.ndarray
        Fixed effects.
    sigma : float
        Residual standard deviation.
    b : list of numpy.ndarray
        Conditional modes of the random effects, one (n_levels x k) array per block.
    deviance : float
        The objective at the optimum: REML criterion or -2 log-likelihood.
    vcov_beta : numpy.ndarray
        Covariance matrix of beta (sigma^2 times the inverse of X' V^-1 X).
    converged : bool
    message : str
        The optimizer's closing message.
    optimizer : str
        The method whose estimates were kept.
    evaluations : int
        Number of deviance evaluations.
    scaled_theta : numpy.ndarray
        theta of the internally scaled problem (each random-effect column
        divided by its root mean square): free of the predictors' units, so
        the boundary (singular) check uses it.
    optinfo : OptInfo
        What the optimizer did.
    """

    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    b: list[np.ndarray]
    deviance: float
    vcov_beta: np.ndarray
    converged: bool
    message: str
    optimizer: str
    evaluations: int
    reml: bool = True
    backend: str = field(default="")
    scaled_theta: np.ndarray = field(default_factory=lambda: np.empty(0))
    optinfo: OptInfo | None = None


def _mixedlm_theta_order(k: int) -> np.ndarray:
    """Positions of lme4's theta (column-major lower triangle) in mixedlm's (row-major)."""
    index = np.zeros((k, k), dtype=int)
    index[np.tril_indices(k)] = np.arange(k * (k + 1) // 2)
    return index.T[np.triu_indices(k)]


def _column_scales(columns: np.ndarray) -> np.ndarray:
    """Root mean square of each column (1 for a column of zeros), the unit the engine works in."""
    if columns.shape[0] == 0:
        return np.ones(columns.shape[1])
    rms = np.linalg.norm(columns, axis=0) / np.sqrt(columns.shape[0])
    return np.where((rms > 0) & np.isfinite(rms), rms, 1.0)


def _theta_rows(k: int) -> np.ndarray:
    """Row of T of each entry of a term's theta (lme4's column-major lower triangle)."""
    return np.array([i for j in range(k) for i in range(j, k)], dtype=int)


def _diagonal_positions(k: int) -> np.ndarray:
    """Positions of T's diagonal in a term's theta (lme4's column-major order)."""
    return np.cumsum([0] + [k - j for j in range(k - 1)]).astype(int)


def _covariance_from_information(information: np.ndarray, sigma: float) -> np.ndarray:
    """sigma^2 * information^-1 by a Cholesky factor of the diagonally scaled matrix.

    Scaling by the diagonal first makes the result equivariant to the units of
    every column; a matrix that is not positive definite gives NaN, never a
    pseudo-inverse's confident number.
    """
    if not information.size:
        return np.empty((0, 0))
    d = np.sqrt(np.diag(information))
    if not np.all(np.isfinite(d) & (d > 0)):
        return np.full(information.shape, np.nan)
    try:
        factor = linalg.cholesky(information / np.outer(d, d), lower=True)
    except linalg.LinAlgError:
        return np.full(information.shape, np.nan)
    inverse_factor = linalg.solve_triangular(factor, np.eye(len(d)), lower=True)
    return sigma**2 * (inverse_factor.T @ inverse_factor) / np.outer(d, d)


#: L-BFGS-B's gradient tolerance per observation (the deviance is a sum over observations).
LBFGS_GRADIENT_TOLERANCE = 1e-8
#: The exact gradient is accurate to about this times the objective (rounding in the sparse
#: Cholesky factor: 2e-4 at an objective of 16,336 on egsingle, above the gradient tolerance).
GRADIENT_NOISE = 2e-8
#: L-BFGS-B stops when a step lowers the objective by less than this, relative. At 1e-15 (below
#: the objective's rounding) it spent 40 of its 56 evaluations on egsingle chasing rounding noise
#: after reaching the optimum to 1e-10; at 1e-13 it stops there.
LBFGS_FTOL = 1e-13
#: "auto" accepts L-BFGS-B alone when its final gradient norm is below this, per observation.
ACCEPT_GRADIENT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class _Stage:
    theta: np.ndarray
    deviance: float
    converged: bool
    optimizer: str
    gradient_norm: float


class _Stages:
    """The optimizer's stages for one fit: run them, count evaluations, keep the messages.

    "auto" is L-BFGS-B on the exact gradient; if it stops short (no success, a
    large gradient, a diagonal of a correlated term's T near zero, where the
    gradient vanishes by symmetry) COBYQA runs from the same start, then
    L-BFGS-B restarts from the better point, and the lowest objective wins.
    On the 50 lme4 reference models this reaches lme4's optimum (lme4 refitted
    with rhoend = 1e-12) to about 1e-10 in the log-likelihood; COBYQA alone is
    as exact but slower, L-BFGS-B on numerical gradients stops up to 5e-5
    short, and SciPy's Nelder-Mead fails on three-term random parts.
    """

    def __init__(self, optimizer, correlated_diagonal: np.ndarray, control: LmerControl):
        self.optimizer, self.correlated_diagonal, self.control = optimizer, correlated_diagonal, control
        self.n_obs = int(optimizer.matrices.n_obs)
        self.names: list[str] = []
        self.messages: list[str] = []
        self.evaluations = 0

    def _options(self, method: str) -> dict:
        limit = int(self.control.max_evaluations)
        if method == "L-BFGS-B":
            return {"maxiter": limit, "maxfun": limit, "ftol": LBFGS_FTOL,
                    "gtol": LBFGS_GRADIENT_TOLERANCE * self.n_obs}
        return {"maxiter": limit, "maxfev": limit}

    def one(self, method: str, start: np.ndarray, label: str | None = None) -> _Stage | None:
        label = label or method
        self.names.append(label)
        try:
            result = self.optimizer.optimize(start=start, method=method, maxiter=int(self.control.max_evaluations),
                                             options=self._options(method), restart_edge=True,
                                             use_analytic_gradient=True)
        except (RuntimeError, ValueError, FloatingPointError, OverflowError, linalg.LinAlgError) as exc:
            self.messages.append(f"{label}: failed ({exc})")
            return None
        self.evaluations += int(result.function_evals)
        self.messages.append(f"{label}: {result.message}")
        norm = np.inf if result.gradient_norm is None else float(result.gradient_norm)
        return _Stage(np.asarray(result.theta, dtype=float), float(result.deviance), bool(result.converged),
                      method, norm)

    def _accepted(self, stage: _Stage, start: np.ndarray) -> bool:
        near_zero = np.abs(stage.theta) <= 1e-4 * np.maximum(np.abs(start), 1.0)
        tolerance = max(ACCEPT_GRADIENT_TOLERANCE * self.n_obs, 10 * GRADIENT_NOISE * abs(stage.deviance))
        line_search_stop = stage.optimizer == "L-BFGS-B" and bool(self.messages) and "ABNORMAL" in self.messages[-1]
        return ((stage.converged or line_search_stop) and np.isfinite(stage.deviance)
                and stage.gradient_norm <= tolerance
                and not np.any(near_zero & self.correlated_diagonal))

    def run(self, start: np.ndarray) -> _Stage:
        if self.control.optimizer != "auto":
            return self._required(self.one(self.control.optimizer, start))
        first = self.one("L-BFGS-B", start)
        if first is not None and self._accepted(first, start):
            return first
        candidates = [s for s in (first, self.one("COBYQA", start)) if s is not None]
        best = self._required(min(candidates, key=lambda s: s.deviance) if candidates else None)
        restart = self.one("L-BFGS-B", best.theta, "L-BFGS-B restart")
        if restart is not None:
            tolerance = 1e-10 * max(1.0, abs(best.deviance))
            if restart.deviance < best.deviance - tolerance or (
                    restart.deviance <= best.deviance + tolerance and restart.converged):
                best = restart
        return best

    def _required(self, stage: _Stage | None) -> _Stage:
        if stage is None:
            raise RuntimeError("the optimizer could not evaluate the model: " + "; ".join(self.messages))
        return stage


def random_structures(blocks: list[Block]) -> list:
    """mixedlm's description of each random-effect term (levels coded 0..n-1, correlated terms)."""
    from mixedlm.matrices.design import RandomEffectStructure

    return [
        RandomEffectStructure(
            grouping_factor=f"g{i}", term_names=[f"t{j}" for j in range(b.k)], n_levels=b.n_levels,
            n_terms=b.k, correlated=True, level_map={str(j): j for j in range(b.n_levels)},
            level_indices=b.codes.astype(np.int32),
        )
        for i, b in enumerate(blocks)
    ]


class Problem:
    """A prepared design (y, X, random blocks) that can be fitted by REML or ML.

    The engine sees every column of X and of each random term divided by its
    root mean square, so that the optimizer works in units free of the
    predictors' scales; every number that leaves this class is mapped back to
    the user's units (theta, beta, its covariance, the random effects, and the
    REML criterion, which depends on the units of X).

    Parameters
    ----------
    y : numpy.ndarray
    X : numpy.ndarray
    blocks : list of Block
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, blocks: list[Block]):
        from mixedlm.matrices.design import ModelMatrices

        self.y = np.ascontiguousarray(y, dtype=float)
        self.X = np.ascontiguousarray(X, dtype=float)
        self.blocks = list(blocks)
        self.Z = sparse.hstack([b.z_matrix() for b in self.blocks], format="csc")
        self.x_scale = _column_scales(self.X)
        self.z_scales = [_column_scales(b.columns) for b in self.blocks]
        self._theta_unit = np.concatenate(
            [c[_theta_rows(b.k)] for b, c in zip(self.blocks, self.z_scales)] or [np.empty(0)])
        scaled_blocks = [Block(b.codes, b.n_levels, b.columns / c) for b, c in zip(self.blocks, self.z_scales)]
        scaled_Z = sparse.hstack([b.z_matrix() for b in scaled_blocks], format="csc")
        structures = random_structures(self.blocks)
        n, p = self.X.shape
        self._matrices = ModelMatrices(
            y=self.y, X=self.X / self.x_scale, Z=scaled_Z, fixed_names=[f"x{j}" for j in range(p)],
            random_structures=structures, n_obs=n, n_fixed=p, n_random=scaled_Z.shape[1], weights=np.ones(n),
            offset=np.zeros(n),
        )
        self._optimizers: dict[bool, object] = {}
        self._ZtZ = None
        self._order = [_mixedlm_theta_order(b.k) for b in self.blocks]

    def _optimizer(self, reml: bool):
        from mixedlm.estimation.reml import LMMOptimizer

        if reml not in self._optimizers:
            optimizer = LMMOptimizer(self._matrices, REML=reml, use_rust=True)
            if not (optimizer.use_rust and optimizer._rust_cache is not None):
                raise RuntimeError("mixedlm would fit without its compiled core; refusing a pure-Python fallback")
            self._optimizers[reml] = optimizer
        return self._optimizers[reml]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_optimizers"] = {}  # the compiled core's objects are rebuilt on demand, not pickled
        return state

    def with_response(self, y: np.ndarray) -> Problem:
        """The same design with a new response (for simulation and the bootstrap)."""
        twin = object.__new__(Problem)
        twin.__dict__.update(self.__dict__)
        twin.y = np.ascontiguousarray(y, dtype=float)
        twin._optimizers = {reml: opt.with_response(twin.y) for reml, opt in self._optimizers.items()}
        twin._matrices = replace(self._matrices, y=twin.y)
        return twin

    def _reml_offset(self, reml: bool) -> float:
        """REML criterion in the user's units minus the scaled problem's: 2 sum(log scale of X)."""
        return float(2 * np.sum(np.log(self.x_scale))) if reml else 0.0

    def scaled_theta(self, theta: np.ndarray) -> np.ndarray:
        """lme4's theta in the engine's units (random-effect columns of unit root mean square)."""
        return np.asarray(theta, dtype=float) * self._theta_unit

    def to_lme4_theta(self, theta_engine: np.ndarray) -> np.ndarray:
        parts, start = [], 0
        for block, order in zip(self.blocks, self._order):
            size = block.k * (block.k + 1) // 2
            parts.append(theta_engine[start:start + size][order])
            start += size
        return np.concatenate(parts) / self._theta_unit

    def from_lme4_theta(self, theta: np.ndarray) -> np.ndarray:
        scaled = self.scaled_theta(theta)
        parts, start = [], 0
        for block, order in zip(self.blocks, self._order):
            size = block.k * (block.k + 1) // 2
            piece = np.empty(size)
            piece[order] = scaled[start:start + size]
            parts.append(piece)
            start += size
        return np.concatenate(parts)

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """The relative covariance factors T (one k x k lower triangle per block) from lme4's theta."""
        out, start = [], 0
        for block in self.blocks:
            size = block.k * (block.k + 1) // 2
            T = np.zeros((block.k, block.k))
            T.T[np.triu_indices(block.k)] = theta[start:start + size]
            out.append(T)
            start += size
        return out

    def fit(self, *, reml: bool, start: np.ndarray | None = None, control: LmerControl | None = None
            ) -> EngineFit:
        """Optimize the profiled REML criterion (or deviance) over theta.

        Parameters
        ----------
        reml : bool
        start : numpy.ndarray, optional
            Starting theta in lme4's order (default: the engine's own start).
        control : LmerControl, optional
            Optimizer, evaluation limit and gradient tolerance.
        """
        control = LmerControl() if control is None else control
        optimizer = self._optimizer(reml)
        with warnings.catch_warnings(), _one_blas_thread():
            warnings.simplefilter("ignore")  # mixedlm's own warnings; convergence is reported by the caller
            start_engine = (optimizer.get_start_theta() if start is None
                            else self.from_lme4_theta(np.asarray(start, dtype=float)))
            stages = _Stages(optimizer, self._diagonal(correlated_only=True), control)
            best = stages.run(start_engine)
            gradient = self._projected_gradient(reml, best.theta)
        max_gradient = float(np.max(np.abs(gradient))) if gradient.size else 0.0
        tolerance = max(control.gradient_tolerance, 5 * GRADIENT_NOISE * abs(best.deviance))
        # L-BFGS-B ends "ABNORMAL" when its line search can make no progress, which at an optimum
        # whose gradient is at rounding level is where it should stop: the gradient check decides.
        stopped_at_optimum = best.optimizer == "L-BFGS-B" and any(
            "ABNORMAL" in m for m in stages.messages if m.startswith("L-BFGS-B"))
        converged = bool(best.converged or stopped_at_optimum) and max_gradient <= tolerance
        info = OptInfo(optimizer=best.optimizer, evaluations=stages.evaluations, max_gradient=max_gradient,
                       converged=converged, stages=tuple(stages.names), messages=tuple(stages.messages))
        message = "; ".join(stages.messages)
        if best.converged and not converged:
            message += f"; the largest gradient, {max_gradient:.2g}, exceeds {tolerance:.2g}"
        if not converged and self._scale_ratio() > 1e6:
            message += ("; some predictor variables are on very different scales: consider rescaling "
                        "(they are rescaled internally, but the fit still stopped short)")
        return self._estimates(reml, np.asarray(best.theta, dtype=float), converged=converged, message=message,
                               optimizer=best.optimizer, evaluations=stages.evaluations, optinfo=info)

    def _scale_ratio(self) -> float:
        """Largest over smallest root mean square of the columns of X and Z."""
        scales = np.concatenate([self.x_scale, *self.z_scales])
        return float(scales.max() / scales.min()) if scales.size else 1.0

    def _diagonal(self, *, correlated_only: bool) -> np.ndarray:
        """Which entries of the engine's theta are diagonal entries of a T (of a T with k > 1)."""
        parts = []
        for block, order in zip(self.blocks, self._order):
            lme4 = np.zeros(block.k * (block.k + 1) // 2, dtype=bool)
            if block.k > 1 or not correlated_only:
                lme4[_diagonal_positions(block.k)] = True
            engine = np.empty_like(lme4)
            engine[order] = lme4
            parts.append(engine)
        return np.concatenate(parts)

    def _projected_gradient(self, reml: bool, theta_engine: np.ndarray) -> np.ndarray:
        """Exact gradient of the objective at theta (engine units), zero where the bound at 0 holds it."""
        _, gradient_of = self._optimizer(reml)._optimization_functions("L-BFGS-B", True)
        if gradient_of is None or not theta_engine.size:
            return np.zeros(theta_engine.size)
        gradient = np.asarray(gradient_of(np.asarray(theta_engine, dtype=float)), dtype=float)
        held = self._diagonal(correlated_only=False) & (theta_engine <= 1e-10) & (gradient > 0)
        return np.where(held, 0.0, gradient)

    def evaluate(self, theta: np.ndarray, *, reml: bool) -> EngineFit:
        """The estimates at a given theta (lme4's order), without optimizing."""
        theta_engine = self.from_lme4_theta(np.asarray(theta, dtype=float))
        return self._estimates(reml, theta_engine, converged=True, message="evaluated at a given theta",
                               optimizer="none", evaluations=1, optinfo=None)

    def _estimates(self, reml: bool, theta_engine: np.ndarray, **status) -> EngineFit:
        """beta, sigma, b, deviance and vcov(beta) at theta, from one penalized least-squares solve."""
        with _one_blas_thread():
            core = self._optimizer(reml)._final_evaluation(theta_engine)
        information = np.asarray(core.fixed_information)
        vcov = _covariance_from_information(information, float(core.sigma)) / np.outer(self.x_scale, self.x_scale)
        b, start = [], 0
        for block, scale in zip(self.blocks, self.z_scales):
            size = block.n_levels * block.k
            b.append(np.asarray(core.u[start:start + size]).reshape(block.n_levels, block.k) / scale)
            start += size
        status["converged"] = status["converged"] and bool(np.isfinite(core.deviance))
        theta = self.to_lme4_theta(theta_engine)
        return EngineFit(
            theta=theta, beta=np.asarray(core.beta, dtype=float) / self.x_scale, sigma=float(core.sigma),
            b=b, deviance=float(core.deviance) + self._reml_offset(reml), vcov_beta=vcov, reml=reml,
            backend=backend(), scaled_theta=self.scaled_theta(theta), **status,
        )

    def deviance(self, theta: np.ndarray, *, reml: bool) -> float:
        """The profiled objective at lme4's `theta` (REML criterion or -2 log-likelihood)."""
        theta_engine = self.from_lme4_theta(np.asarray(theta, dtype=float))
        return float(self._optimizer(reml).objective(theta_engine)) + self._reml_offset(reml)

    def conditional_variances(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        """Conditional covariance of each group's random effects, as lme4's ranef(condVar = TRUE).

        Returns one (n_levels x k x k) array per block: the diagonal blocks of
        sigma^2 Lambda (Lambda' Z'Z Lambda + I)^-1 Lambda'.
        """
        with _one_blas_thread():
            return self._conditional_variances(theta, sigma)

    def _conditional_variances(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        if len(self.blocks) == 1:
            return [self._one_term_conditional_variances(self.factors(theta)[0], sigma)]
        factors = self.factors(theta)
        Lambda = sparse.block_diag(
            [sparse.kron(sparse.identity(b.n_levels), T) for b, T in zip(self.blocks, factors)], format="csc")
        if self._ZtZ is None:
            self._ZtZ = (self.Z.T @ self.Z).tocsc()
        V = (Lambda.T @ self._ZtZ @ Lambda + sparse.identity(Lambda.shape[0])).tocsc()
        V_inverse = splu(V).solve(np.eye(V.shape[0]))  # sparse LU: q is at most a few thousand here
        out, start = [], 0
        for block, T in zip(self.blocks, factors):
            k, size = block.k, block.n_levels * block.k
            inner = V_inverse[start:start + size, start:start + size].reshape(block.n_levels, k, block.n_levels, k)
            diagonal = inner[np.arange(block.n_levels), :, np.arange(block.n_levels), :]  # (levels, k, k)
            out.append(sigma**2 * np.einsum("ij,ljk,mk->lim", T, diagonal, T))
            start += size
        return out

    def _one_term_conditional_variances(self, T: np.ndarray, sigma: float) -> np.ndarray:
        """One random term: V is block diagonal, one k x k block T' Z_l' Z_l T + I per group l."""
        block = self.blocks[0]
        outer = block.columns[:, :, None] * block.columns[:, None, :]
        ZtZ = np.zeros((block.n_levels, block.k, block.k))
        np.add.at(ZtZ, block.codes, outer)
        V = np.einsum("ji,ljk,km->lim", T, ZtZ, T) + np.eye(block.k)
        return sigma**2 * np.einsum("ij,ljk,mk->lim", T, np.linalg.inv(V), T)
