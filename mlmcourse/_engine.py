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
import warnings
from dataclasses import dataclass, field, replace
from importlib import metadata

import numpy as np
from scipy import linalg, sparse
from scipy.sparse.linalg import splu

__all__ = ["Block", "EngineFit", "Problem", "backend", "OPTIMIZER", "MAX_ITERATIONS"]

#: The optimizer: L-BFGS-B on the exact gradient of the profiled deviance from
#: the compiled core, falling back to COBYQA (a successor of lme4's BOBYQA) when
#: it does not converge, ends on a large gradient or near a boundary; the lower
#: deviance wins. On the 50 lme4 reference models it reaches lme4's optimum (lme4
#: refitted with rhoend = 1e-12) to 2e-10 in the log-likelihood; COBYQA alone is
#: as exact but slower, L-BFGS-B with numerical gradients stops up to 5e-5 short,
#: and SciPy's Nelder-Mead fails on three-term random parts. (lme4's own default,
#: nloptwrap's BOBYQA, needs the optional nlopt package and stops short too.)
OPTIMIZER = "auto"
#: Iteration limit per optimizer stage (mixedlm's default).
MAX_ITERATIONS = 1000
ENGINE = "mixedlm"
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


def backend() -> str:
    """Describe the engine in use; raise if its compiled core is not available.

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


def _mixedlm_theta_order(k: int) -> np.ndarray:
    """Positions of lme4's theta (column-major lower triangle) in mixedlm's (row-major)."""
    index = np.zeros((k, k), dtype=int)
    index[np.tril_indices(k)] = np.arange(k * (k + 1) // 2)
    return index.T[np.triu_indices(k)]


class Problem:
    """A prepared design (y, X, random blocks) that can be fitted by REML or ML.

    Parameters
    ----------
    y : numpy.ndarray
    X : numpy.ndarray
    blocks : list of Block
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, blocks: list[Block]):
        from mixedlm.matrices.design import ModelMatrices, RandomEffectStructure

        self.y = np.ascontiguousarray(y, dtype=float)
        self.X = np.ascontiguousarray(X, dtype=float)
        self.blocks = list(blocks)
        self.Z = sparse.hstack([b.z_matrix() for b in self.blocks], format="csc")
        structures = [
            RandomEffectStructure(
                grouping_factor=f"g{i}", term_names=[f"t{j}" for j in range(b.k)], n_levels=b.n_levels,
                n_terms=b.k, correlated=True, level_map={str(j): j for j in range(b.n_levels)},
                level_indices=b.codes.astype(np.int32),
            )
            for i, b in enumerate(self.blocks)
        ]
        n, p = self.X.shape
        self._matrices = ModelMatrices(
            y=self.y, X=self.X, Z=self.Z, fixed_names=[f"x{j}" for j in range(p)], random_structures=structures,
            n_obs=n, n_fixed=p, n_random=self.Z.shape[1], weights=np.ones(n), offset=np.zeros(n),
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

    def to_lme4_theta(self, theta_engine: np.ndarray) -> np.ndarray:
        parts, start = [], 0
        for block, order in zip(self.blocks, self._order):
            size = block.k * (block.k + 1) // 2
            parts.append(theta_engine[start:start + size][order])
            start += size
        return np.concatenate(parts)

    def from_lme4_theta(self, theta: np.ndarray) -> np.ndarray:
        parts, start = [], 0
        for block, order in zip(self.blocks, self._order):
            size = block.k * (block.k + 1) // 2
            piece = np.empty(size)
            piece[order] = theta[start:start + size]
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

    def fit(self, *, reml: bool, start: np.ndarray | None = None) -> EngineFit:
        """Optimize the profiled REML criterion (or deviance) over theta.

        Parameters
        ----------
        reml : bool
        start : numpy.ndarray, optional
            Starting theta in lme4's order (default: the engine's own start).
        """
        from mixedlm.models.control import LmerControl

        optimizer = self._optimizer(reml)
        control = LmerControl(optimizer=OPTIMIZER, maxiter=MAX_ITERATIONS)
        start_engine = None if start is None else self.from_lme4_theta(np.asarray(start, dtype=float))
        with warnings.catch_warnings(), _one_blas_thread():
            warnings.simplefilter("ignore")  # mixedlm's own warnings; convergence is reported by the caller
            result = optimizer.optimize(
                start=start_engine, method=OPTIMIZER, maxiter=MAX_ITERATIONS,
                options=control.get_scipy_options(optimizer=OPTIMIZER, maxiter=MAX_ITERATIONS),
                restart_edge=True, use_analytic_gradient=control.use_analytic_gradient,
            )
        return self._estimates(
            reml, np.asarray(result.theta, dtype=float), converged=bool(result.converged),
            message=str(result.message), optimizer=str(result.optimizer), evaluations=int(result.function_evals),
        )

    def evaluate(self, theta: np.ndarray, *, reml: bool) -> EngineFit:
        """The estimates at a given theta (lme4's order), without optimizing."""
        theta_engine = self.from_lme4_theta(np.asarray(theta, dtype=float))
        return self._estimates(reml, theta_engine, converged=True, message="evaluated at a given theta",
                               optimizer="none", evaluations=1)

    def _estimates(self, reml: bool, theta_engine: np.ndarray, **status) -> EngineFit:
        """beta, sigma, b, deviance and vcov(beta) at theta, from one penalized least-squares solve."""
        with _one_blas_thread():
            core = self._optimizer(reml)._final_evaluation(theta_engine)
        information = np.asarray(core.fixed_information)
        vcov = core.sigma**2 * linalg.pinvh(information) if information.size else np.empty((0, 0))
        b, start = [], 0
        for block in self.blocks:
            size = block.n_levels * block.k
            b.append(np.asarray(core.u[start:start + size]).reshape(block.n_levels, block.k))
            start += size
        status["converged"] = status["converged"] and bool(np.isfinite(core.deviance))
        return EngineFit(
            theta=self.to_lme4_theta(theta_engine), beta=np.asarray(core.beta, dtype=float), sigma=float(core.sigma),
            b=b, deviance=float(core.deviance), vcov_beta=vcov, reml=reml, backend=backend(), **status,
        )

    def deviance(self, theta: np.ndarray, *, reml: bool) -> float:
        """The profiled objective at lme4's `theta` (REML criterion or -2 log-likelihood)."""
        return float(self._optimizer(reml).objective(self.from_lme4_theta(np.asarray(theta, dtype=float))))

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
