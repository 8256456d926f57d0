"""The numerical engine behind :func:`mlmcourse.glmer`, behind one door.

Numbers in (the response as proportions or counts, binomial trials, X, one
block of random-effect columns per term, the family and link), numbers out
(theta, beta, the conditional modes b, the Laplace or adaptive Gauss-Hermite
deviance, the covariance of beta). Swapping the engine means rewriting this
module only.

The engine is ``mixedlm``'s GLMM code (penalized iteratively reweighted least
squares for the conditional modes, lme4's Laplace and adaptive quadrature
approximations; Bates et al. 2015, section 5 of the lme4 GLMM vignette). The
fit optimizes theta and beta jointly, as lme4's second stage does.

Notes
-----
Standard errors are lme4's default for ``summary()`` of a GLMM: the fixed-effect
block of the inverse of half the Hessian of the deviance over (theta, beta),
by central finite differences (lme4's ``deriv12``, step 1e-4). When that
Hessian is not positive definite the conditional (RX-based) covariance is used
instead, as lme4 does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np
from scipy import sparse, special, stats

from mlmcourse._engine import Block, _mixedlm_theta_order, _one_blas_thread, random_structures

__all__ = ["Link", "LINKS", "GlmmFit", "GlmmProblem", "saturated_loglik"]

HESSIAN_STEP = 1e-4  # lme4's deriv12(delta = 1e-4)
MAX_ITERATIONS = 1000
#: Optimizers over (theta, beta), tried in turn until one converges (the lowest deviance is kept):
#: L-BFGS-B on central-difference gradients, then COBYQA (a successor of lme4's BOBYQA). On the
#: 15 lme4 reference models L-BFGS-B is up to 5 times faster than COBYQA and reaches the same optimum.
OPTIMIZERS = ("L-BFGS-B", "COBYQA")
#: L-BFGS-B stops on tight tolerances: with the engine's defaults (ftol 1e-8, gtol 1e-5) small
#: coefficients can end 2e-3 (relative) from the optimum.
TOLERANCES = {"L-BFGS-B": {"ftol": 1e-12, "gtol": 1e-7}, "COBYQA": {}}


@dataclass(frozen=True)
class Link:
    """A link function g with its inverse and the derivative dmu/deta.

    Examples
    --------
    >>> round(float(LINKS["logit"].inverse(np.array([0.0]))[0]), 3)
    0.5
    """

    name: str

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        eta = np.asarray(eta, dtype=float)
        if self.name == "logit":
            return special.expit(eta)
        if self.name == "probit":
            return special.ndtr(eta)
        return np.exp(eta)

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        mu = np.asarray(mu, dtype=float)
        if self.name == "logit":
            return special.logit(mu)
        if self.name == "probit":
            return special.ndtri(mu)
        return np.log(mu)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        eta = np.asarray(eta, dtype=float)
        if self.name == "logit":
            p = special.expit(eta)
            return p * (1 - p)
        if self.name == "probit":
            return stats.norm.pdf(eta)
        return np.exp(eta)


LINKS = {name: Link(name) for name in ("logit", "probit", "log")}


def variance(family: str, mu: np.ndarray) -> np.ndarray:
    """The variance function V(mu): mu(1 - mu) for the binomial, mu for the Poisson."""
    return mu * (1 - mu) if family == "binomial" else mu


def saturated_loglik(family: str, y: np.ndarray, trials: np.ndarray) -> float:
    """Log-likelihood of the saturated model (each row its own mean), with all constants.

    Adding it to minus half the engine's deviance (which is relative to the
    saturated model) gives the log-likelihood lme4 reports for Laplace fits.
    """
    if family == "binomial":
        successes = np.rint(y * trials)
        return float(np.sum(stats.binom.logpmf(successes, trials, y)))
    return float(np.sum(stats.poisson.logpmf(y, y)))


@dataclass(frozen=True)
class GlmmFit:
    """What the engine returns for one GLMM fit (theta in lme4's order)."""

    theta: np.ndarray
    beta: np.ndarray
    b: list[np.ndarray]
    relative_deviance: float
    vcov_beta: np.ndarray
    vcov_method: str
    converged: bool
    message: str
    evaluations: int
    nagq: int
    backend: str


class GlmmProblem:
    """A prepared GLMM design: response, trials, X, random blocks, family and link.

    Parameters
    ----------
    y : numpy.ndarray
        Proportions of successes (binomial) or counts (Poisson).
    trials : numpy.ndarray
        Binomial trials per row (lme4's prior weights); ones for the Poisson.
    X : numpy.ndarray
    blocks : list of mlmcourse._engine.Block
    family : {"binomial", "poisson"}
    link : {"logit", "probit", "log"}
    """

    def __init__(self, y, trials, X, blocks: list[Block], family: str, link: str):
        from mixedlm.families import Binomial, Poisson
        from mixedlm.matrices.design import ModelMatrices

        self.y = np.ascontiguousarray(y, dtype=float)
        self.trials = np.ascontiguousarray(trials, dtype=float)
        self.X = np.ascontiguousarray(X, dtype=float)
        self.blocks = list(blocks)
        self.family, self.link = family, LINKS[link]
        self.Z = sparse.hstack([b.z_matrix() for b in self.blocks], format="csc")
        self._family = Binomial(link=link) if family == "binomial" else Poisson(link=link)
        structures = random_structures(self.blocks)
        n, p = self.X.shape
        self.matrices = ModelMatrices(
            y=self.y, X=self.X, Z=self.Z, fixed_names=[f"x{j}" for j in range(p)], random_structures=structures,
            n_obs=n, n_fixed=p, n_random=self.Z.shape[1], weights=self.trials, offset=np.zeros(n),
        )
        self._order = [_mixedlm_theta_order(b.k) for b in self.blocks]

    # ------------------------------------------------------------ theta order
    def _theta_sizes(self) -> list[int]:
        return [b.k * (b.k + 1) // 2 for b in self.blocks]

    def to_lme4_theta(self, theta_engine: np.ndarray) -> np.ndarray:
        parts, start = [], 0
        for size, order in zip(self._theta_sizes(), self._order):
            parts.append(np.asarray(theta_engine[start:start + size])[order])
            start += size
        return np.concatenate(parts)

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """The relative covariance factors T (k x k lower triangles) from lme4's theta."""
        out, start = [], 0
        for block, size in zip(self.blocks, self._theta_sizes()):
            T = np.zeros((block.k, block.k))
            T.T[np.triu_indices(block.k)] = theta[start:start + size]
            out.append(T)
            start += size
        return out

    # -------------------------------------------------------------------- fit
    def fit(self, nagq: int = 1) -> GlmmFit:
        """Maximize the Laplace (nagq = 1) or adaptive Gauss-Hermite likelihood."""
        from mixedlm.estimation.laplace import GLMMOptimizer
        from mixedlm.models.control import GlmerControl

        control = GlmerControl()
        optimizer = GLMMOptimizer(self.matrices, self._family, nAGQ=nagq, pirls_tol=control.tolPwrss,
                                  pirls_maxiter=control.pirls_maxiter)
        with warnings.catch_warnings(), _one_blas_thread():
            warnings.simplefilter("ignore")  # the engine's own warnings; the caller reports convergence
            result = None
            for method in OPTIMIZERS:
                attempt = optimizer.optimize(method=method, maxiter=MAX_ITERATIONS,
                                             options=GlmerControl(optimizer=method, **TOLERANCES[method])
                                             .get_scipy_options(maxiter=MAX_ITERATIONS))
                if result is None or attempt.deviance < result.deviance:
                    result = attempt
                if attempt.converged:
                    break
            vcov, method = self._vcov(optimizer, np.asarray(result.theta), np.asarray(result.beta))
        b, start = [], 0
        for block in self.blocks:
            size = block.n_levels * block.k
            b.append(np.asarray(result.u[start:start + size]).reshape(block.n_levels, block.k))
            start += size
        return GlmmFit(
            theta=self.to_lme4_theta(np.asarray(result.theta, dtype=float)), beta=np.asarray(result.beta, dtype=float),
            b=b, relative_deviance=float(result.deviance), vcov_beta=vcov, vcov_method=method,
            converged=bool(result.converged and np.isfinite(result.deviance)), message=str(result.message),
            evaluations=int(result.n_iter), nagq=nagq, backend=f"mixedlm {metadata.version('mixedlm')}",
        )

    def _vcov(self, optimizer, theta: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, str]:
        """lme4's Hessian-based covariance of beta, or the conditional one if the Hessian is not usable."""
        objective = optimizer.joint_objective()
        point = np.r_[theta, beta]
        hessian = _central_hessian(lambda x: objective.evaluate(x)[0], point, HESSIAN_STEP)
        try:
            inverse = np.linalg.inv(hessian / 2)
            eigen = np.linalg.eigvalsh((hessian + hessian.T) / 2)
            if np.all(eigen > 0) and np.all(np.isfinite(inverse)):
                block = inverse[len(theta):, len(theta):]
                return (block + block.T) / 2, "hessian"
        except np.linalg.LinAlgError:
            pass
        return self.conditional_vcov(self.to_lme4_theta(theta), beta), "conditional"

    # --------------------------------------------------- quantities at a fit
    def linear_predictor(self, beta: np.ndarray, b: list[np.ndarray]) -> np.ndarray:
        eta = self.X @ beta
        for block, values in zip(self.blocks, b):
            eta = eta + np.einsum("ij,ij->i", block.columns, values[block.codes])
        return eta

    def working_weights(self, eta: np.ndarray) -> np.ndarray:
        """PIRLS weights at the mode: trials * (dmu/deta)^2 / V(mu)."""
        mu = self.link.inverse(eta)
        return self.trials * self.link.mu_eta(eta) ** 2 / np.maximum(variance(self.family, mu), 1e-300)

    def _precision(self, theta: np.ndarray, weights: np.ndarray):
        Lambda = sparse.block_diag(
            [sparse.kron(sparse.identity(b.n_levels), T) for b, T in zip(self.blocks, self.factors(theta))],
            format="csc")
        ZL = (sparse.diags(np.sqrt(weights)) @ self.Z @ Lambda).tocsc()
        return Lambda, ZL, (ZL.T @ ZL + sparse.identity(Lambda.shape[0])).toarray()

    def conditional_variances(self, theta: np.ndarray, beta: np.ndarray, b: list[np.ndarray]) -> list[np.ndarray]:
        """lme4's condVar: diagonal blocks of Lambda (Lambda' Z' W Z Lambda + I)^-1 Lambda' at the mode."""
        weights = self.working_weights(self.linear_predictor(beta, b))
        Lambda, _, precision = self._precision(theta, weights)
        inner = Lambda @ np.linalg.inv(precision) @ Lambda.T.toarray()
        out, start = [], 0
        for block in self.blocks:
            k, size = block.k, block.n_levels * block.k
            piece = inner[start:start + size, start:start + size].reshape(block.n_levels, k, block.n_levels, k)
            out.append(piece[np.arange(block.n_levels), :, np.arange(block.n_levels), :])
            start += size
        return out

    def conditional_vcov(self, theta: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Covariance of beta given theta (X' W X minus the random-effect part, inverted; lme4's RX)."""
        from mixedlm.estimation.laplace import glmm_deviance_with_status

        _, _, u, _ = glmm_deviance_with_status(self.from_lme4_theta(theta), self.matrices, self._family, nAGQ=1)
        b, start = [], 0
        for block in self.blocks:
            size = block.n_levels * block.k
            b.append(np.asarray(u[start:start + size]).reshape(block.n_levels, block.k))
            start += size
        weights = self.working_weights(self.linear_predictor(beta, b))
        _, ZL, precision = self._precision(theta, weights)
        WX = np.sqrt(weights)[:, None] * self.X
        cross = ZL.T @ WX
        information = WX.T @ WX - cross.T @ np.linalg.solve(precision, cross)
        return np.linalg.pinv(information)

    def from_lme4_theta(self, theta: np.ndarray) -> np.ndarray:
        """lme4's theta order to the engine's."""
        parts, start = [], 0
        for size, order in zip(self._theta_sizes(), self._order):
            piece = np.empty(size)
            piece[order] = theta[start:start + size]
            parts.append(piece)
            start += size
        return np.concatenate(parts)


def _central_hessian(function, x: np.ndarray, step: float) -> np.ndarray:
    """Second derivatives by central differences (the scheme of lme4's deriv12)."""
    n = len(x)
    f0 = function(x)
    hessian = np.empty((n, n))
    unit = np.eye(n) * step
    plus = [function(x + unit[i]) for i in range(n)]
    minus = [function(x - unit[i]) for i in range(n)]
    for i in range(n):
        hessian[i, i] = (plus[i] - 2 * f0 + minus[i]) / step**2
        for j in range(i):
            value = (function(x + unit[i] + unit[j]) - plus[i] - plus[j] + 2 * f0 - minus[i] - minus[j]
                     + function(x - unit[i] - unit[j])) / (2 * step**2)
            hessian[i, j] = hessian[j, i] = value
    return hessian
