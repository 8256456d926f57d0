"""Small-sample t and F tests for fixed effects: Satterthwaite and Kenward-Roger.

A Wald test of a fixed effect divides the estimate by a standard error that
plugs in the estimated variance parameters, as if they were known. With few
groups that understates the uncertainty. Both methods here keep the Wald
statistic and refer it to a t (or F) distribution whose denominator degrees of
freedom reflect how well the variance parameters are determined; Kenward and
Roger also inflate the covariance matrix of the fixed effects.

Notes
-----
Satterthwaite (1946), as lmerTest computes it (Kuznetsova, Brockhoff &
Christensen 2017): for a contrast L beta with variance v(phi) = L C(phi) L',
phi = (theta, sigma), df = 2 v^2 / (g' A g), g the gradient of v in phi and
A = 2 H^-1 the asymptotic covariance of phi from the Hessian H of the (REML or
ML) deviance. Several contrasts: the eigen-decomposition of L C L' gives
independent t statistics whose df are pooled as in lmerTest. lmerTest takes H
and g by numerical differentiation; here both are in closed form (the observed
Hessian of the profiled deviance in (theta, sigma), the same quantity), which is
exact and an order of magnitude faster. Models with more than
``ANALYTIC_UP_TO`` random effects fall back to finite differences.

Kenward & Roger (1997), as pbkrtest computes it (Halekoh & Hojsgaard 2014):
with Sigma = sum_i gamma_i G_i linear in the variances and covariances gamma,
Phi = (X' Sigma^-1 X)^-1, P_i = -X' Sigma^-1 G_i Sigma^-1 X,
Q_ij = X' Sigma^-1 G_i Sigma^-1 G_j Sigma^-1 X and W the inverse of the
expected REML information, the adjusted covariance is
Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j)] Phi, and the F test is
scaled and given df from moment matching. Every n x n product is computed in
the q-dimensional space of the random effects (Woodbury), so the method runs
on thousands of rows.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, sparse, stats
from scipy.sparse.linalg import splu

from mlmcourse import _engine

__all__ = ["coef_table", "contrast_test", "satterthwaite_df", "kenward_roger_df", "vcov_kenward_roger",
           "DDF_METHODS", "COEF_COLUMNS", "TEST_COLUMNS"]

COEF_COLUMNS = ["term", "estimate", "std_error", "statistic", "df", "p_value", "conf_low", "conf_high"]
TEST_COLUMNS = ["method", "statistic", "df", "p_value", "num_df", "den_df"]  # an F test; df = num_df
DDF_METHODS = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "asymptotic": "asymptotic"}
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
SPARSE_FROM = 400  # random effects (q) from which M is factored as a sparse matrix
ANALYTIC_UP_TO = 2500  # up to this q, derivatives in closed form (dense q x q); beyond, finite differences


def _method(ddf: str) -> str:
    key = str(ddf).lower().replace("_", "-").replace(" ", "-")
    aliases = {"kr": "kenward-roger", "kenward-roger": "kenward-roger", "satterthwaite": "satterthwaite",
               "asymptotic": "asymptotic", "z": "asymptotic", "wald": "asymptotic"}
    if key not in aliases:
        raise ValueError(f"ddf must be one of {list(DDF_METHODS)}, not {ddf!r}")
    return aliases[key]


# ----------------------------------------------------------- the model in q dimensions
class _Pieces:
    """Cross-products of y, X and Z and the relative factor Lambda(theta): the model without n x n matrices."""

    def __init__(self, fit):
        problem = fit._design.problem
        self.X, self.y, self.Z = problem.X, problem.y, problem.Z.tocsc()
        self.problem = problem
        self.n, self.p = self.X.shape
        self.ZtZ = (self.Z.T @ self.Z).tocsc()
        self.ZtX = np.asarray(self.Z.T @ self.X)
        self.Zty = np.asarray(self.Z.T @ self.y)
        self.XtX, self.Xty, self.yty = self.X.T @ self.X, self.X.T @ self.y, float(self.y @ self.y)
        self.theta, self.sigma, self.reml = np.asarray(fit.theta, float), float(fit.sigma), bool(fit.reml)

    def lam(self, theta: np.ndarray) -> sparse.csc_matrix:
        """Lambda(theta), block diagonal: I (levels) kron T for each term, columns level-major as Z's."""
        q, offset, parts = self.Z.shape[1], 0, []
        for block, T in zip(self.problem.blocks, self.problem.factors(theta)):
            parts.append(_block_entries(T, block.n_levels, offset))
            offset += block.n_levels * block.k
        rows, cols, values = (np.concatenate(part) for part in zip(*parts))
        return sparse.csc_matrix((values, (rows, cols)), shape=(q, q))

    def inner(self, lam: sparse.csc_matrix) -> np.ndarray:
        """Lambda' Z'Z Lambda as a dense q x q matrix."""
        return np.asarray((lam.T @ self.ZtZ @ lam).todense())

    def at(self, theta: np.ndarray, lam: sparse.csc_matrix | None = None) -> dict:
        """Penalized least squares at theta: log|M|, X'V^-1 X, beta-hat and the PWRSS (V relative to sigma^2).

        M = Lambda'Z'Z Lambda + I is factored densely when q is small and as a sparse matrix
        (SuperLU, symmetric ordering) when it is large, as in models with a factor of thousands of
        levels, where a dense q x q factorization would dominate the time.
        """
        lam = self.lam(theta) if lam is None else lam
        LtZtX, LtZty = np.asarray(lam.T @ self.ZtX), np.asarray(lam.T @ self.Zty)
        logdet, solve = self._factor(lam)
        MiX, Miy = solve(LtZtX), solve(LtZty)
        XVX = self.XtX - LtZtX.T @ MiX
        XVy = self.Xty - LtZtX.T @ Miy
        yVy = self.yty - LtZty @ Miy
        beta = np.linalg.solve(XVX, XVy)
        return {"logdet_M": logdet, "XVX": XVX, "beta": beta, "pwrss": float(yVy - XVy @ beta)}

    def _factor(self, lam: sparse.csc_matrix):
        """log|M| and a solver for M, where M = Lambda'Z'Z Lambda + I."""
        q = lam.shape[0]
        if q <= SPARSE_FROM:
            chol = linalg.cho_factor(self.inner(lam) + np.eye(q), lower=True)
            return 2 * np.sum(np.log(np.diag(chol[0]))), lambda b: linalg.cho_solve(chol, b)
        M = (lam.T @ self.ZtZ @ lam + sparse.identity(q, format="csc")).tocsc()
        lu = splu(M, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        return float(np.sum(np.log(np.abs(lu.U.diagonal())))), lu.solve

    def deviance(self, varpar: np.ndarray) -> float:
        """lmerTest's devfun_vp: the deviance (REML or ML) at theta and sigma, beta profiled out."""
        theta, sigma2 = varpar[:-1], varpar[-1] ** 2
        s = self.at(theta)
        dev = s["logdet_M"] + s["pwrss"] / sigma2 + self.n * np.log(2 * np.pi * sigma2)
        if self.reml:
            dev += np.linalg.slogdet(s["XVX"])[1] - self.p * np.log(2 * np.pi * sigma2)
        return float(dev)

    def covbeta(self, varpar: np.ndarray) -> np.ndarray:
        """sigma^2 (X' V^-1 X)^-1 as a function of theta and sigma."""
        return varpar[-1] ** 2 * np.linalg.inv(self.at(varpar[:-1])["XVX"])


# ------------------------------------------------------------ numerical derivatives
def _richardson(values: list, ratio: float = 2.0, order: int = 2) -> np.ndarray:
    """Richardson extrapolation of central differences at steps h, h/2, h/4, ... (error O(h^2) steps)."""
    table = [np.asarray(v, dtype=float) for v in values]
    power = order
    while len(table) > 1:
        factor = ratio**power
        table = [(factor * table[i + 1] - table[i]) / (factor - 1) for i in range(len(table) - 1)]
        power += order
    return table[0]


def _steps(x: np.ndarray, rel: float = 1e-3) -> np.ndarray:
    return rel * np.maximum(np.abs(x), 1e-2)


def jacobian(func, x: np.ndarray, levels: int = 4) -> np.ndarray:
    """d func / d x (func returns an array), central differences with Richardson extrapolation.

    Examples
    --------
    >>> import numpy as np
    >>> float(np.round(jacobian(lambda v: np.array([np.sin(v[0])]), np.array([0.5]))[0, 0], 8))
    0.87758256
    """
    x = np.asarray(x, dtype=float)
    h0, out = _steps(x), []
    for j in range(len(x)):
        values = []
        for level in range(levels):
            e = np.zeros_like(x)
            e[j] = h0[j] / 2**level
            values.append((np.ravel(func(x + e)) - np.ravel(func(x - e))) / (2 * e[j]))
        out.append(_richardson(values))
    return np.column_stack(out)


def hessian(func, x: np.ndarray, levels: int = 4) -> np.ndarray:
    """Second derivatives of a scalar function, central differences with Richardson extrapolation.

    Examples
    --------
    >>> import numpy as np
    >>> (np.round(hessian(lambda v: v[0] ** 2 * v[1], np.array([1.0, 2.0])), 6) + 0.0).tolist()
    [[4.0, 2.0], [2.0, 0.0]]
    """
    x = np.asarray(x, dtype=float)
    k, h0, f0 = len(x), _steps(x), func(x)
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            values = []
            for level in range(levels):
                hi, hj = np.zeros(k), np.zeros(k)
                hi[i], hj[j] = h0[i] / 2**level, h0[j] / 2**level
                if i == j:
                    values.append((func(x + hi) - 2 * f0 + func(x - hi)) / hi[i] ** 2)
                else:
                    values.append((func(x + hi + hj) - func(x + hi - hj) - func(x - hi + hj) + func(x - hi - hj))
                                  / (4 * hi[i] * hj[j]))
            H[i, j] = H[j, i] = _richardson(values)
    return H


# ------------------------------------------------------------------- Satterthwaite
@dataclass(frozen=True)
class _Satterthwaite:
    vcov_beta: np.ndarray
    vcov_varpar: np.ndarray  # A = 2 H^-1 (pseudo-inverse on the positive eigenvalues, as lmerTest)
    jac: list  # d vcov_beta / d varpar_k, one p x p matrix per variance parameter


def _cached(fit, compute):
    """``compute(fit)``, once per fit (on one BLAS thread: the matrices are small and many)."""
    cache = _CACHE.setdefault(fit, {})
    if compute not in cache:
        with _engine._one_blas_thread():
            cache[compute] = compute(fit)
    return cache[compute]


def _satterthwaite(fit) -> _Satterthwaite:
    return _cached(fit, _compute_satterthwaite)


def _compute_satterthwaite(fit) -> _Satterthwaite:
    pieces = _Pieces(fit)
    varpar = np.append(pieces.theta, pieces.sigma)
    if pieces.Z.shape[1] <= ANALYTIC_UP_TO:
        covbeta, H, jac = _analytic_derivatives(pieces)
    else:
        H, J = hessian(pieces.deviance, varpar), jacobian(pieces.covbeta, varpar)
        covbeta, jac = pieces.covbeta(varpar), [J[:, k].reshape(pieces.p, pieces.p) for k in range(len(varpar))]
    values, vectors = np.linalg.eigh(H)
    keep = values > 1e-8
    A = 2 * (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    return _Satterthwaite(covbeta, A, jac)


def _theta_derivatives(pieces: _Pieces) -> tuple[list, dict]:
    """d(Lambda Lambda')/d theta_k and the nonzero second derivatives, as q x q sparse matrices.

    Lambda is linear in theta (lme4's parameterization): with E_k the factor T
    of theta = e_k, d(T T')/d theta_k = E_k T' + T E_k' and the second
    derivative is E_k E_l' + E_l E_k' (zero across random terms), repeated on
    the diagonal for every level of the term's grouping factor.
    """
    m, factors = len(pieces.theta), pieces.problem.factors(pieces.theta)
    owner, offsets, start = [], [], 0
    for index, block in enumerate(pieces.problem.blocks):
        owner += [index] * (block.k * (block.k + 1) // 2)
        offsets.append(start)
        start += block.n_levels * block.k
    E = [pieces.problem.factors(np.eye(m)[k])[owner[k]] for k in range(m)]

    def embed(index: int, small: np.ndarray) -> sparse.csr_matrix:
        block = pieces.problem.blocks[index]
        return _embed_block(small, block.n_levels, offsets[index], start)

    first = [embed(owner[k], E[k] @ factors[owner[k]].T + factors[owner[k]] @ E[k].T) for k in range(m)]
    second = {(k, l): embed(owner[k], E[k] @ E[l].T + E[l] @ E[k].T)
              for k in range(m) for l in range(k, m) if owner[k] == owner[l]}
    return first, second


def _block_entries(small: np.ndarray, levels: int, offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of I_levels kron small, placed on the diagonal from row and column `offset`."""
    k = small.shape[0]
    a, b = np.nonzero(small)
    base = offset + np.arange(levels)[:, None] * k
    return (base + a).ravel(), (base + b).ravel(), np.tile(small[a, b], levels)


def _embed_block(small: np.ndarray, levels: int, offset: int, q: int) -> sparse.csr_matrix:
    """I_levels kron small as a q x q matrix, its first row and column at `offset`."""
    rows, cols, values = _block_entries(small, levels, offset)
    return sparse.csr_matrix((values, (rows, cols)), shape=(q, q))


def _analytic_derivatives(pieces: _Pieces) -> tuple[np.ndarray, np.ndarray, list]:
    """vcov(beta), the Hessian of lmerTest's deviance in (theta, sigma) and d vcov(beta) / d varpar, in closed form.

    With Sigma = sigma^2 (Z Lambda Lambda' Z' + I), Sigma_i its derivatives and
    P the REML projection (Sigma^-1 for the trace terms of an ML deviance),
    the deviance's Hessian is tr(P Sigma_ij) - tr(P Sigma_i P Sigma_j)
    + 2 y'P Sigma_i P Sigma_j P y - y'P Sigma_ij P y, and
    d vcov(beta) / d phi_i = C X'Sigma^-1 Sigma_i Sigma^-1 X C with C = vcov(beta).
    Every n x n product reduces to q x q ones through Z'P Z and Z'P y (Woodbury).
    """
    theta, sigma, sigma2 = pieces.theta, pieces.sigma, pieces.sigma**2
    lam = pieces.lam(theta)
    state = pieces.at(theta, lam)
    _, solve = pieces._factor(lam)
    LtA = (lam.T @ pieces.ZtZ).tocsc()  # sparse: products with it cost O(nnz q), not O(q^3)
    ZWZ = pieces.ZtZ.toarray() - LtA.T @ solve(LtA.toarray())  # Z' V^-1 Z, V = Z Lambda Lambda' Z' + I
    ZWX = pieces.ZtX - LtA.T @ solve(np.asarray(lam.T @ pieces.ZtX))
    resid = pieces.Zty - pieces.ZtX @ state["beta"]
    u = resid - LtA.T @ solve(lam.T @ resid)  # Z' V^-1 (y - X beta) = Z' P y (relative)
    XVX_inv = np.linalg.inv(state["XVX"])
    ZPZ = ZWZ - ZWX @ XVX_inv @ ZWX.T
    S = ZPZ if pieces.reml else ZWZ  # for the trace terms
    first, second = _theta_derivatives(pieces)
    if S.shape[0] <= SPARSE_FROM:  # small q: dense products beat sparse-matrix overhead
        first, second = [g.toarray() for g in first], {key: g.toarray() for key, g in second.items()}
    m = len(theta)
    GS = [g @ S for g in first]
    Gu = [g @ u for g in first]
    quad = np.array([u @ gu for gu in Gu]) / sigma2  # y'P Sigma_k P y
    N = pieces.n - pieces.p if pieces.reml else pieces.n
    yPy = state["pwrss"] / sigma2
    H = np.zeros((m + 1, m + 1))
    for k in range(m):
        for l in range(k, m):
            G2 = second.get((k, l))
            curvature = 0.0 if G2 is None else _trace_of_product(G2, S) - u @ (G2 @ u) / sigma2
            H[k, l] = H[l, k] = curvature - np.sum(GS[k] * GS[l].T) + 2 * Gu[k] @ ZPZ @ Gu[l] / sigma2
        H[k, m] = H[m, k] = 2 * quad[k] / sigma
    H[m, m] = (6 * yPy - 2 * N) / sigma2
    C = sigma2 * XVX_inv
    jac = [C @ (ZWX.T @ (g @ ZWX)) @ C / sigma2 for g in first] + [2 * C / sigma]
    return C, H, jac


def _trace_of_product(G, S: np.ndarray) -> float:
    """tr(G S) for a sparse or dense G."""
    return float(G.multiply(S.T).sum()) if sparse.issparse(G) else float(np.sum(G * S.T))


def satterthwaite_df(fit, L) -> float:
    """Satterthwaite's denominator df for the contrast L beta (lmerTest's ``contest1D``).

    Parameters
    ----------
    fit : LmerResult
    L : array-like
        One weight per fixed effect.

    Returns
    -------
    float

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> round(satterthwaite_df(m, [0, 1]), 1)
    17.0
    """
    s = _satterthwaite(fit)
    L = _contrast_vector(fit, L)
    variance = L @ s.vcov_beta @ L
    gradient = np.array([L @ J @ L for J in s.jac])
    return float(2 * variance**2 / (gradient @ s.vcov_varpar @ gradient))


def _pool_df(nu: np.ndarray) -> float:
    """lmerTest's get_Fstat_ddf: one df for an F built from independent t statistics."""
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < 1e-8):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    expected = np.sum(nu / (nu - 2))
    return float(2 * expected / (expected - len(nu)))


def _satterthwaite_f(fit, L: np.ndarray) -> tuple[float, int, float]:
    s = _satterthwaite(fit)
    values, vectors = np.linalg.eigh(L @ s.vcov_beta @ L.T)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > max(np.sqrt(np.finfo(float).eps) * values[0], 0)
    PtL = (vectors.T @ L)[keep]
    beta = fit.fixef.to_numpy()
    t2 = (PtL @ beta) ** 2 / values[keep]
    nu = np.array([2 * d**2 / (g @ s.vcov_varpar @ g) for d, g in
                   zip(values[keep], ([row @ J @ row for J in s.jac] for row in PtL))])
    return float(np.mean(t2)), int(keep.sum()), _pool_df(nu)


# ------------------------------------------------------------------- Kenward-Roger
@dataclass(frozen=True)
class _KenwardRoger:
    phi: np.ndarray  # unadjusted vcov of beta
    phi_adjusted: np.ndarray
    P: list
    W: np.ndarray


def _sigma_inverse(pieces: _Pieces, lam: np.ndarray, chol, sigma2: float, Y: np.ndarray) -> np.ndarray:
    """Sigma^-1 Y = (Y - Z Lambda M^-1 Lambda' Z' Y) / sigma^2 (Woodbury), Y dense n x m."""
    ZtY = np.asarray(pieces.Z.T @ Y)
    return (Y - pieces.Z @ (lam @ linalg.cho_solve(chol, np.asarray(lam.T @ ZtY)))) / sigma2


def _indicator_matrices(pieces: _Pieces) -> list[sparse.csr_matrix]:
    """pbkrtest's G_i = Z E_i Z': one E_i (q x q) per variance or covariance, in VarCorr's lower triangle."""
    out, offset, q = [], 0, pieces.Z.shape[1]
    for block in pieces.problem.blocks:
        k, levels = block.k, block.n_levels
        base = offset + np.arange(levels) * k
        for b in range(k):
            for a in range(b, k):
                rows, cols = (base + a, base + b) if a == b else (np.r_[base + a, base + b], np.r_[base + b, base + a])
                out.append(sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(q, q)))
        offset += levels * k
    return out


def _kr_blocks(pieces: _Pieces):
    """P_i, Q_ij and tr(G_i Sigma^-1 G_j Sigma^-1) for the random-effect G's and the residual (last)."""
    sigma2 = pieces.sigma**2
    lam = pieces.lam(pieces.theta)
    LtZtZL = pieces.inner(lam)
    chol = linalg.cho_factor(LtZtZL + np.eye(lam.shape[0]), lower=True)
    TT = _sigma_inverse(pieces, lam, chol, sigma2, pieces.X)  # Sigma^-1 X
    SZ = _sigma_inverse(pieces, lam, chol, sigma2, pieces.Z.toarray())  # Sigma^-1 Z
    U = _sigma_inverse(pieces, lam, chol, sigma2, TT)  # Sigma^-2 X
    ZtT, ZtU, B, B2 = pieces.Z.T @ TT, pieces.Z.T @ U, np.asarray(pieces.Z.T @ SZ), SZ.T @ SZ
    E = _indicator_matrices(pieces)
    EB = [e @ B for e in E]
    K = linalg.cho_solve(chol, LtZtZL)  # M^-1 Lambda'Z'Z Lambda
    m = len(E) + 1
    P = [-(ZtT.T @ (e @ ZtT)) for e in E] + [-(TT.T @ TT)]
    Q, Kt = {}, np.zeros((m, m))
    for i in range(m):
        for j in range(i, m):
            if j < m - 1:
                Q[i, j] = ZtT.T @ (EB[i] @ (E[j] @ ZtT))
                Kt[i, j] = np.sum(EB[i] * EB[j].T)
            elif i < m - 1:
                Q[i, j] = ZtT.T @ (E[i] @ ZtU)
                Kt[i, j] = (E[i].multiply(B2)).sum()
            else:
                Q[i, j] = TT.T @ U
                Kt[i, j] = (pieces.n - 2 * np.trace(K) + np.sum(K * K.T)) / sigma2**2
            Kt[j, i] = Kt[i, j]
    return P, Q, Kt


def _kenward_roger(fit) -> _KenwardRoger:
    if not fit.reml:
        raise ValueError("the Kenward-Roger method needs a REML fit (as pbkrtest and lmerTest): "
                         "refit with reml=True or use ddf='satterthwaite'")
    return _cached(fit, _compute_kenward_roger)


def _compute_kenward_roger(fit) -> _KenwardRoger:
    pieces = _Pieces(fit)
    phi = pieces.sigma**2 * np.linalg.inv(pieces.at(pieces.theta)["XVX"])
    P, Q, Kt = _kr_blocks(pieces)
    m = len(P)
    info = np.array([[Kt[i, j] - 2 * np.sum(phi * Q[min(i, j), max(i, j)]) + np.sum((phi @ P[i]) * (P[j] @ phi))
                      for j in range(m)] for i in range(m)])
    small = np.min(np.abs(np.linalg.eigvalsh(info))) <= 1e-10
    W = 2 * (np.linalg.pinv(info) if small else np.linalg.inv(info))
    W = (W + W.T) / 2
    UU = np.zeros_like(phi)
    for i in range(m):
        for j in range(i, m):
            term = W[i, j] * (Q[i, j] - P[i] @ phi @ P[j])
            UU += term if i == j else term + term.T
    return _KenwardRoger(phi, phi + 2 * phi @ UU @ phi, P, W)


def vcov_kenward_roger(fit) -> pd.DataFrame:
    """The Kenward-Roger adjusted covariance matrix of the fixed effects (pbkrtest's ``vcovAdj``).

    Parameters
    ----------
    fit : LmerResult
        A REML fit.

    Returns
    -------
    pandas.DataFrame
        Terms x terms; larger than ``fit.vcov`` on the diagonal.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> bool((vcov_kenward_roger(m).to_numpy().diagonal() >= m.vcov.to_numpy().diagonal()).all())
    True
    """
    kr = _kenward_roger(fit)
    names = list(fit.fixef.index)
    return pd.DataFrame(kr.phi_adjusted, index=names, columns=names)


def _kr_moments(kr: _KenwardRoger, L: np.ndarray) -> tuple[float, float, int]:
    """pbkrtest's .KR_adjust: denominator df and F scaling for the hypothesis L beta = 0."""
    phi = kr.phi
    theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    u = [theta @ phi @ P @ phi for P in kr.P]
    A1 = A2 = 0.0
    for i in range(len(u)):
        for j in range(i, len(u)):
            e = 1.0 if i == j else 2.0
            A1 += e * kr.W[i, j] * np.trace(u[i]) * np.trace(u[j])
            A2 += e * kr.W[i, j] * np.sum(u[i] * u[j].T)
    q = int(np.linalg.matrix_rank(L))
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    denominator = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denominator, (q - g) / denominator, (q + 2 - g) / denominator
    V0 = 1 + c1 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    V1, V2 = 1 - c2 * B, 1 - c3 * B
    ratio = (1 - A2 / q) / V1 if V1 != 0 else 0.0
    rho = ratio**2 * V0 / V2 / q
    df2 = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(df2 - 2) < 1e-2 else df2 * (1 - A2 / q) / (df2 - 2)
    return float(df2), float(scaling), q


def kenward_roger_df(fit, L) -> float:
    """Kenward-Roger denominator df for the contrast L beta (pbkrtest's ``Lb_ddf``).

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> round(kenward_roger_df(m, [0, 1]), 2)
    17.0
    """
    return _kr_moments(_kenward_roger(fit), _contrast_vector(fit, L)[None, :])[0]


# ------------------------------------------------------------------- the tables
def _contrast_vector(fit, L) -> np.ndarray:
    L = np.asarray(L, dtype=float).ravel()
    if L.shape != (len(fit.fixef),):
        raise ValueError(f"a contrast needs one weight per fixed effect ({len(fit.fixef)}: "
                         f"{list(fit.fixef.index)}), not {L.size}")
    return L


def _contrast_matrix(fit, L) -> np.ndarray:
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[1] != len(fit.fixef):
        raise ValueError(f"each row of L needs one weight per fixed effect ({len(fit.fixef)}: "
                         f"{list(fit.fixef.index)}), not {L.shape[1]}")
    return L


def contrast_test(fit, L, ddf: str = "satterthwaite") -> pd.DataFrame:
    """F test of L beta = 0 with lmerTest's numbers (``contestMD``).

    Parameters
    ----------
    fit : LmerResult
    L : array-like
        One row per hypothesis, one column per fixed effect.
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}
        The asymptotic test is the Wald chi-square divided by its df, with an
        infinite denominator df.

    Returns
    -------
    pandas.DataFrame
        One row: method, statistic (F), df (= num_df), p_value, num_df,
        den_df (:data:`TEST_COLUMNS`).

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> test = contrast_test(m, [[0, 1]])
    >>> row = test.iloc[0]
    >>> round(float(row["statistic"]), 2), float(row["num_df"]), round(float(row["den_df"]), 1)
    (45.85, 1.0, 17.0)
    """
    return pd.DataFrame([contrast_row(fit, L, ddf)], columns=TEST_COLUMNS)


def contrast_row(fit, L, ddf: str = "satterthwaite") -> dict:
    """The F test of :func:`contrast_test` as a dict (one row of a table of several tests)."""
    method, L = _method(ddf), _contrast_matrix(fit, L)
    beta = fit.fixef.to_numpy()
    if method == "kenward-roger":
        kr = _kenward_roger(fit)
        den_df, scaling, q = _kr_moments(kr, L)
        wald = float((L @ beta) @ np.linalg.lstsq(L @ kr.phi_adjusted @ L.T, L @ beta, rcond=None)[0])
        statistic = scaling * wald / q
    elif method == "satterthwaite":
        statistic, q, den_df = _satterthwaite_f(fit, L)
    else:
        vcov = fit.vcov.to_numpy()
        q = int(np.linalg.matrix_rank(L @ vcov @ L.T))
        statistic = float((L @ beta) @ np.linalg.lstsq(L @ vcov @ L.T, L @ beta, rcond=None)[0]) / q
        den_df = np.inf
    p_value = float(stats.f.sf(statistic, q, den_df)) if np.isfinite(den_df) else float(stats.chi2.sf(statistic * q, q))
    return {"method": _label(method), "statistic": float(statistic), "df": float(q), "p_value": p_value,
            "num_df": float(q), "den_df": float(den_df)}


def _label(method: str) -> str:
    return {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "asymptotic": "Wald (asymptotic)"}[method]


def coef_table(fit, ddf: str = "satterthwaite", level: float = 0.95) -> pd.DataFrame:
    """Fixed effects with t tests and intervals: lmerTest's ``summary()`` coefficient table.

    Parameters
    ----------
    fit : LmerResult
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, default "satterthwaite"
        Denominator degrees of freedom: Satterthwaite's (lmerTest's default),
        Kenward-Roger's (which also inflates the standard errors; REML fits
        only), or none (z tests, df = inf).
    level : float, default 0.95
        Confidence level of the intervals, estimate -+ t(df) quantile x std_error.

    Returns
    -------
    pandas.DataFrame
        One row per fixed effect; columns term, estimate, std_error,
        statistic, df, p_value, conf_low, conf_high.

    Examples
    --------
    >>> import mlmcourse
    >>> m = mlmcourse.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> table = coef_table(m)
    >>> table["df"].round(1).tolist()
    [17.0, 17.0]
    """
    method = _method(ddf)
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    p = len(fit.fixef)
    if method == "kenward-roger":
        std_error = np.sqrt(np.diag(_kenward_roger(fit).phi_adjusted))
        df = np.array([kenward_roger_df(fit, np.eye(p)[j]) for j in range(p)])
    elif method == "satterthwaite":
        std_error = fit.std_error.to_numpy()
        df = np.array([satterthwaite_df(fit, np.eye(p)[j]) for j in range(p)])
    else:
        std_error, df = fit.std_error.to_numpy(), np.full(p, np.inf)
    estimate = fit.fixef.to_numpy()
    statistic = estimate / std_error
    quantile = stats.t.ppf(0.5 + level / 2, df)
    return pd.DataFrame({"term": list(fit.fixef.index), "estimate": estimate, "std_error": std_error,
                         "statistic": statistic, "df": df, "p_value": 2 * stats.t.sf(np.abs(statistic), df),
                         "conf_low": estimate - quantile * std_error, "conf_high": estimate + quantile * std_error})
