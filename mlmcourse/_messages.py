"""The package's warnings (one family) and the checks that name what is wrong.

Every warning mlmcourse raises is an :class:`MlmWarning`, so one filter
silences or raises them all::

    warnings.simplefilter("error", mlmcourse.MlmWarning)

Notes
-----
The family follows lme4's messages: rows or columns dropped, a boundary
(singular) fit, an optimizer that did not converge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["MlmWarning", "DataWarning", "LmerWarning", "SingularFitWarning", "ConvergenceWarning",
           "require_type", "Fingerprint"]


class MlmWarning(UserWarning):
    """Base class of every warning raised by mlmcourse."""


class DataWarning(MlmWarning):
    """Rows, columns or groups left out of an estimator (missing values, too little data)."""


class LmerWarning(MlmWarning):
    """Something about a mixed-model fit that the user should know (rows or columns dropped)."""


class SingularFitWarning(LmerWarning):
    """A variance estimated as zero or a correlation as +-1 (lme4's 'boundary (singular) fit')."""


class ConvergenceWarning(LmerWarning):
    """The optimizer did not report convergence."""


def require_type(value, expected: type | tuple, name: str, made_by: str = "") -> None:
    """Raise a TypeError naming the argument and the type it needs.

    Parameters
    ----------
    value : object
    expected : type or tuple of types
    name : str
        The argument's name, e.g. ``"fit"``.
    made_by : str, optional
        Where such an object comes from, e.g. ``"mlmcourse.lmer()"``.

    Examples
    --------
    >>> require_type(3, int, "n")
    >>> require_type("x", int, "n")
    Traceback (most recent call last):
    ...
    TypeError: n must be int, not str ('x')
    """
    if isinstance(value, expected):
        return
    kinds = expected if isinstance(expected, tuple) else (expected,)
    wanted = " or ".join(k.__name__ for k in kinds)
    source = f" (from {made_by})" if made_by else ""
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise TypeError(f"{name} must be {wanted}{source}, not {type(value).__name__} ({shown})")


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Which data a fit used: the response's name, the row labels and the response values.

    Two fits can be compared (likelihood-ratio test, Hausman test) only when
    their fingerprints agree; :meth:`difference` says what differs.

    Attributes
    ----------
    response : str
    rows : pandas.Index
        Labels of the rows used (after rows with missing values were dropped).
    values : numpy.ndarray
        The response values in those rows.

    Examples
    --------
    >>> a = Fingerprint.of(pd.Series([1.0, 2.0, 3.0], name="y"))
    >>> a.difference(Fingerprint.of(pd.Series([1.0, 2.0, 4.0], name="y")))
    'the response values differ in 1 of 3 rows (first at row 2: 3 vs 4)'
    """

    response: str
    rows: pd.Index
    values: np.ndarray

    @classmethod
    def of(cls, y: pd.Series, response: str | None = None) -> Fingerprint:
        """The fingerprint of a response Series (its index labels the rows)."""
        return cls(str(response if response is not None else y.name), pd.Index(y.index),
                   np.asarray(y, dtype=float).copy())

    def difference(self, other: Fingerprint) -> str | None:
        """None when both describe the same data, else a sentence naming what differs."""
        if self.response != other.response:
            return f"the responses differ ({self.response!r} vs {other.response!r})"
        if len(self.rows) != len(other.rows):
            return f"the fits use different numbers of rows ({len(self.rows)} vs {len(other.rows)})"
        if not self.rows.equals(other.rows) and not (self.rows.is_unique and other.rows.is_unique):
            return "the fits use different rows (or the same rows in another order)"
        order = self.row_order(other)
        if (order < 0).any():
            return f"the fits use different rows (row {self.rows[order < 0][0]!r} is in one fit only)"
        differ = ~np.isclose(self.values, other.values[order], rtol=1e-12, atol=0.0)
        if differ.any():
            first = int(np.flatnonzero(differ)[0])
            return (f"the response values differ in {int(differ.sum())} of {len(differ)} rows (first at row "
                    f"{self.rows[first]!r}: {self.values[first]:g} vs {other.values[order][first]:g})")
        return None

    def row_order(self, other: Fingerprint) -> np.ndarray:
        """Positions in `other` of this fingerprint's rows, -1 where a row is missing.

        The same rows in another order are the same data.
        """
        if self.rows.equals(other.rows):
            return np.arange(len(self.rows))
        return other.rows.get_indexer(self.rows)
