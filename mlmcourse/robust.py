"""Cluster-robust standard errors for OLS: CR1 and CR2 with small-sample degrees of freedom.

``cluster_robust`` fits an OLS regression that ignores the groups and then computes a
sandwich variance from the residuals summed within each cluster:

* ``"CR1"``: the sandwich with Stata's small-sample factor
  ``G / (G - 1) * (N - 1) / (N - p)`` and t tests on ``G - 1`` degrees of freedom
  (Stata's ``regress, vce(cluster)``; clubSandwich's ``"CR1S"``);
* ``"CR2"``: the bias-reduced sandwich of Bell & McCaffrey (2002), which scales each
  cluster's residuals by ``(I - H_jj)^(-1/2)``, with t tests on the Satterthwaite degrees of
  freedom of Bell & McCaffrey (2002) and Pustejovsky & Tipton (2018) (clubSandwich's
  ``coef_test(fit, vcov = "CR2", test = "Satterthwaite")``).

With few clusters CR1 standard errors are too small and its tests reject too often; CR2 with
Satterthwaite degrees of freedom keeps close to the nominal level (Imbens & Kolesár, 2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlmcourse.estimators import _design
from mlmcourse.lmm import COEF_COLUMNS

__all__ = ["ClusterRobustResult", "cluster_robust", "COEF_COLUMNS"]
TYPES = ("CR1", "CR2")


@dataclass(frozen=True, eq=False, repr=False)
class ClusterRobustResult:
    """An OLS fit with cluster-robust standard errors.

    Attributes
    ----------
    formula : str
    type : str
        ``"CR1"`` or ``"CR2"``.
    group : str
        The clustering column.
    estimate : Series
        OLS estimates indexed by term (lme4's term names).
    vcov : DataFrame
        Cluster-robust covariance matrix of the estimates (terms x terms).
    df : Series
        Degrees of freedom of each term's t test.
    nobs : int
        Rows used.
    ngroups : dict
        ``{group: number of clusters}``.
    level : float
        Confidence level of ``conf_low`` and ``conf_high``.
    """

    formula: str
    type: str
    group: str
    estimate: pd.Series
    vcov: pd.DataFrame
    df: pd.Series
    nobs: int
    ngroups: dict
    level: float = 0.95

    @property
    def std_error(self) -> pd.Series:
        """Cluster-robust standard errors indexed by term."""
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.vcov.index, name="std_error")

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """One row per term: ``term, estimate, std_error, statistic, df, p_value, conf_low, conf_high``.

        Intervals at `level` (default: the level the fit was asked for), with the t quantile on
        each term's df.
        """
        level = self.level if level is None else level
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, not {level!r}")
        se = self.std_error
        t = self.estimate / se
        half = stats.t.ppf(0.5 + level / 2, self.df) * se
        table = pd.DataFrame({
            "term": self.estimate.index, "estimate": self.estimate.to_numpy(), "std_error": se.to_numpy(),
            "statistic": t.to_numpy(), "df": self.df.to_numpy(dtype=float),
            "p_value": 2 * stats.t.sf(np.abs(t.to_numpy()), self.df.to_numpy(dtype=float)),
            "conf_low": (self.estimate - half).to_numpy(), "conf_high": (self.estimate + half).to_numpy(),
        })
        return table[COEF_COLUMNS]

    def __repr__(self) -> str:
        header = (f"OLS with cluster-robust ({self.type}) standard errors: {self.formula}  "
                  f"({self.nobs} observations, {self.ngroups[self.group]} clusters of {self.group})")
        return header + "\n" + self.coef_table().to_string(index=False)


def _inverse_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric ``matrix^(-1/2)``; eigenvalues that are zero stay zero (a generalised inverse)."""
    values, vectors = np.linalg.eigh(matrix)
    keep = values > 1e-12 * max(values.max(), 1.0)
    root = np.zeros_like(values)
    root[keep] = 1 / np.sqrt(values[keep])
    return (vectors * root) @ vectors.T


def _cr2_pieces(x: np.ndarray, clusters: list[np.ndarray], bread: np.ndarray) -> list[np.ndarray]:
    """For each cluster, ``A_j X_j (X'X)^-1`` with ``A_j = (I - H_jj)^(-1/2)`` (p columns)."""
    pieces = []
    for rows in clusters:
        xj = x[rows]
        hjj = xj @ bread @ xj.T
        pieces.append(_inverse_sqrt(np.eye(len(rows)) - hjj) @ xj @ bread)
    return pieces


def _satterthwaite_df(x: np.ndarray, clusters: list[np.ndarray], pieces: list[np.ndarray],
                      bread: np.ndarray) -> np.ndarray:
    """Bell-McCaffrey degrees of freedom of each coefficient (working model: independence).

    For coefficient k, ``g_j = (I - H)[:, j]' A_j X_j (X'X)^-1 e_k``; then
    ``df = (sum_j g_j'g_j)^2 / sum_i sum_j (g_i'g_j)^2`` (Pustejovsky & Tipton 2018, eq. 11).
    """
    n, p = x.shape
    residual_maker = np.eye(n) - x @ bread @ x.T
    df = np.empty(p)
    for k in range(p):
        g = np.column_stack([residual_maker[:, rows] @ piece[:, k] for rows, piece in zip(clusters, pieces)])
        cross = g.T @ g
        df[k] = np.trace(cross) ** 2 / np.sum(cross ** 2)
    return df


def _check_type(type: str) -> str:
    if type not in TYPES:
        raise ValueError(f"type must be one of {TYPES}, not {type!r}")
    return type


def cluster_robust(formula: str, data: pd.DataFrame, group: str, *, type: str = "CR2",
                   level: float = 0.95) -> ClusterRobustResult:
    """OLS with cluster-robust standard errors, CR1 or CR2.

    Parameters
    ----------
    formula : str
        Regression formula, e.g. ``"MathAch ~ Sector"``.
    data : DataFrame
    group : str
        The column that defines the clusters.
    type : {"CR2", "CR1"}
        ``"CR2"``: Bell & McCaffrey's bias-reduced sandwich with Satterthwaite degrees of
        freedom per term; ``"CR1"``: Stata's ``vce(cluster)`` with ``G - 1`` degrees of freedom.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    ClusterRobustResult
        ``coef_table()`` columns: term, estimate, std_error, statistic, df, p_value,
        conf_low, conf_high.

    Notes
    -----
    The sandwich is ``(X'X)^-1 [sum_j X_j' A_j e_j e_j' A_j X_j] (X'X)^-1`` with ``A_j = I``
    (times Stata's factor) for CR1 and ``A_j = (I - H_jj)^(-1/2)`` for CR2 (Bell & McCaffrey,
    2002; Pustejovsky & Tipton, 2018). R: ``clubSandwich::coef_test(lm(formula, data),
    vcov = "CR2", cluster = data$group, test = "Satterthwaite")``; Stata: ``regress ...,
    vce(cluster group)`` for CR1. Needs at least two clusters; computing CR2's degrees of freedom
    uses an n x n matrix, fine for data of a few thousand rows.

    Examples
    --------
    >>> import mlmcourse
    >>> fit = cluster_robust("MathAch ~ Sector", mlmcourse.load("hsb40"), "School")
    >>> row = fit.coef_table().set_index("term").loc["SectorPublic"]
    >>> round(float(row["std_error"]), 4), round(float(row["df"]), 1)
    (0.8377, 35.1)
    """
    _check_type(type)
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level!r}")
    y, x_frame, labels = _design(formula, data, group, "the cluster column")
    codes, uniques = pd.factorize(labels)
    if len(uniques) < 2:
        raise ValueError(f"cluster-robust standard errors need at least 2 clusters; {group!r} has {len(uniques)}")
    x, terms = x_frame.to_numpy(dtype=float), list(x_frame.columns)
    n, p = x.shape
    if np.linalg.matrix_rank(x) < p:
        raise ValueError(f"the model matrix of {formula!r} is rank deficient: some terms are collinear")
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ x.T @ y.to_numpy(dtype=float)
    resid = y.to_numpy(dtype=float) - x @ beta
    clusters = [np.flatnonzero(codes == g) for g in range(len(uniques))]
    if type == "CR1":
        scores = np.array([x[rows].T @ resid[rows] for rows in clusters])
        g_count = len(clusters)
        vcov = bread @ scores.T @ scores @ bread * g_count / (g_count - 1) * (n - 1) / (n - p)
        df = np.full(p, g_count - 1.0)
    else:
        pieces = _cr2_pieces(x, clusters, bread)
        scores = np.array([piece.T @ resid[rows] for rows, piece in zip(clusters, pieces)])
        vcov = scores.T @ scores
        df = _satterthwaite_df(x, clusters, pieces, bread)
    return ClusterRobustResult(formula, type, group, pd.Series(beta, index=terms, name="estimate"),
                               pd.DataFrame(vcov, index=terms, columns=terms), pd.Series(df, index=terms),
                               int(n), {group: len(clusters)}, level)
