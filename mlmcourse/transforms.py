"""R's transformations inside model formulas, and how factors become columns.

A formula variable is either a data column or a call: arithmetic in ``I()``
(``I(SES^2)``), ``log()``, ``exp()``, ``sqrt()``, ``scale()``, ``poly(x, k)``,
``factor()`` or ``offset()``. Each is described by a :class:`Spec` (what the
formula says, with R's printed name as its label) and, once fitted to the
data, by a :class:`Variable`, which keeps what the data taught it (the centre
and scale of ``scale()``, the recurrence coefficients of ``poly()``, a
factor's levels and contrasts) so that new data are coded the same way.

Factors get R's default contrasts: treatment contrasts (first level the
reference) for unordered factors, orthogonal polynomial contrasts
(``contr.poly``: columns ``.L``, ``.Q``, ``.C``, ``^4``, ...) for ordered ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Spec", "Variable", "contr_poly", "poly_columns", "factor_levels", "factor_codes",
           "factorize", "is_factor", "level_label", "level_labels", "deparse", "evaluate"]

#: Functions allowed inside arithmetic (and as a term of their own).
MATH_FUNCTIONS = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt, "log2": np.log2, "log10": np.log10,
                  "log1p": np.log1p, "abs": np.abs}
#: Every function a formula may call.
FORMULA_FUNCTIONS = ("I", *MATH_FUNCTIONS, "scale", "poly", "factor", "offset")


# ------------------------------------------------------------------ factors
def is_factor(values: pd.Series) -> bool:
    """Whether a column is coded by levels (categorical, string or boolean), as R's factors."""
    return not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def factor_levels(values: pd.Series) -> list:
    """The levels present in a factor column: category order, else sorted values.

    Linear in the number of rows for categoricals and plain values alike.

    Examples
    --------
    >>> factor_levels(pd.Series(pd.Categorical(["b", "a", "b"], categories=["c", "b", "a"])))
    ['b', 'a']
    >>> [float(v) for v in factor_levels(pd.Series([3.0, 1.0, 3.0]))]
    [1.0, 3.0]
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        present = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)))
        return list(values.cat.categories[present])
    return sorted(pd.unique(values.dropna()))


def factor_codes(values: pd.Series, levels: list) -> np.ndarray:
    """The position of each value in `levels` (-1 for a value not among them), linear in rows."""
    index = pd.Index(levels)
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = np.append(index.get_indexer(values.cat.categories), -1)
        return lookup[values.cat.codes.to_numpy()]  # code -1 (missing) picks the appended -1
    return index.get_indexer(values)


def factorize(values: pd.Series) -> tuple[np.ndarray, list]:
    """Level index of each row and the levels present (as :func:`factor_levels`), in one linear pass.

    Examples
    --------
    >>> codes, levels = factorize(pd.Series(["b", "a", "b"]))
    >>> codes.tolist(), levels
    ([1, 0, 1], ['a', 'b'])
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = factor_levels(values)
        return factor_codes(values, levels), levels
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(uniques, dtype=object).tolist()


def level_labels(levels: list) -> list[str]:
    """:func:`level_label` of each level (text levels are their own labels)."""
    if all(type(level) is str for level in levels):
        return list(levels)
    return [level_label(level) for level in levels]


def level_label(level) -> str:
    """How R prints a level: TRUE/FALSE for booleans, 3 rather than 3.0.

    Examples
    --------
    >>> level_label(True), level_label(3.0), level_label(2.5), level_label("a")
    ('TRUE', '3', '2.5', 'a')
    """
    if isinstance(level, (bool, np.bool_)):
        return "TRUE" if level else "FALSE"
    if isinstance(level, (float, np.floating)) and float(level).is_integer():
        return str(int(level))
    return str(level)


def contr_poly(n: int) -> np.ndarray:
    """R's ``contr.poly(n)``: orthonormal polynomial contrasts on the scores 1..n (n x (n-1)).

    Examples
    --------
    >>> (np.round(contr_poly(3), 6) + 0.0).tolist()
    [[-0.707107, 0.408248], [0.0, -0.816497], [0.707107, 0.408248]]
    """
    scores = np.arange(1, n + 1, dtype=float)
    powers = np.vander(scores - scores.mean(), n, increasing=True)
    q, r = np.linalg.qr(powers)
    raw = q * np.diag(r)  # the part of each power orthogonal to the lower ones, sign as R's
    return (raw / np.linalg.norm(raw, axis=0))[:, 1:]


def contr_poly_names(n: int) -> list[str]:
    """Column suffixes of ``contr.poly(n)``: .L, .Q, .C, ^4, ^5, ..."""
    return [".L", ".Q", ".C", *[f"^{k}" for k in range(4, n)]][: n - 1]


# ------------------------------------------------------------------ poly()
def poly_coefficients(x: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """R's ``attr(poly(x, degree), "coefs")``: the recurrence's alpha and norm2."""
    alpha, norm2 = np.empty(degree), [1.0, float(len(x))]
    previous, current = np.zeros_like(x), np.ones_like(x)
    for i in range(degree):
        alpha[i] = np.sum(x * current**2) / norm2[-1]
        following = (x - alpha[i]) * current - (norm2[-1] / norm2[-2]) * previous
        previous, current = current, following
        norm2.append(float(np.sum(current**2)))
    return alpha, np.asarray(norm2)


def poly_columns(x: np.ndarray, alpha: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    """The orthogonal polynomial columns of `x` for stored coefficients (``predict(poly)``).

    Examples
    --------
    >>> x = np.arange(10.0)
    >>> alpha, norm2 = poly_coefficients(x, 2)
    >>> Z = poly_columns(x, alpha, norm2)
    >>> (np.round(Z.T @ Z, 12) + 0.0).tolist(), round(float(Z[0, 0]), 6)
    ([[1.0, 0.0], [0.0, 1.0]], -0.495434)
    """
    degree = len(alpha)
    Z = np.ones((len(x), degree + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    return Z[:, 1:] / np.sqrt(norm2[2:])


# --------------------------------------------------------------- arithmetic
def r_number(value: float) -> str:
    """A number as R's deparse prints it (15 significant digits, the shorter of fixed and e-notation)."""
    if float(value).is_integer() and abs(value) < 1e15:
        fixed = str(int(value))
    else:
        fixed = np.format_float_positional(float(value), precision=15, unique=True, trim="-")
    mantissa, exponent = f"{float(value):.15e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    power = int(exponent)
    scientific = f"{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    return fixed if len(fixed) <= len(scientific) else scientific


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4}


def deparse(node) -> str:
    """R's printed form of an arithmetic expression (spaces around ``+ - *``, none around ``/ ^``).

    Examples
    --------
    >>> deparse(("bin", "^", ("paren", ("bin", "-", ("col", "x"), ("num", 1.0))), ("num", 2.0)))
    '(x - 1)^2'
    """
    kind = node[0]
    if kind == "col":
        return _r_name(node[1])
    if kind == "num":
        return r_number(node[1])
    if kind == "paren":
        return f"({deparse(node[1])})"
    if kind == "neg":
        return f"-{deparse(node[1])}"
    if kind == "call":
        return f"{node[1]}({', '.join(deparse(a) for a in node[2])})"
    op, left, right = node[1], deparse(node[2]), deparse(node[3])
    return f"{left}{op}{right}" if op in "/^" else f"{left} {op} {right}"


def _r_name(name: str) -> str:
    syntactic = (name[:1].isalpha() or (name[:1] == "." and not name[1:2].isdigit())) and \
        all(ch.isalnum() or ch in "._" for ch in name)
    return name if syntactic else f"`{name}`"


def columns_of(node) -> list[str]:
    """The data columns an expression reads, in order of appearance."""
    if node[0] == "col":
        return [node[1]]
    if node[0] in ("num",):
        return []
    if node[0] in ("paren", "neg"):
        return columns_of(node[1])
    children = node[2] if node[0] == "call" else node[2:]
    return list(dict.fromkeys(c for child in children for c in columns_of(child)))


def evaluate(node, data: pd.DataFrame, label: str) -> np.ndarray:
    """Evaluate an arithmetic expression on the columns of `data` (NaN where an input is missing)."""
    kind = node[0]
    if kind == "col":
        values = data[node[1]]
        if is_factor(values) and not pd.api.types.is_bool_dtype(values):
            raise TypeError(f"{label} needs numbers, but column {node[1]!r} is not numeric (its type is "
                            f"{values.dtype}); use factor() or a numeric column")
        return values.to_numpy(dtype=float, na_value=np.nan)
    if kind == "num":
        return np.full(len(data), node[1])
    if kind == "paren":
        return evaluate(node[1], data, label)
    if kind == "neg":
        return -evaluate(node[1], data, label)
    with np.errstate(all="ignore"):
        if kind == "call":
            inner = evaluate(node[2][0], data, label)
            return inner if node[1] == "I" else MATH_FUNCTIONS[node[1]](inner)
        left, right = evaluate(node[2], data, label), evaluate(node[3], data, label)
        return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}[node[1]](left, right)


# ------------------------------------------------------------------ specs
@dataclass(frozen=True)
class Spec:
    """One formula variable as written.

    Attributes
    ----------
    kind : str
        "column" (a data column), "arith" (``I()``, ``log()``, ... : a number
        per row), "scale", "poly", "factor" or "offset".
    label : str
        R's printed name: ``"SES"``, ``"I(SES^2)"``, ``"poly(Days, 2)"``.
    node : tuple
        The argument as an arithmetic expression (``("col", name)`` for a column).
    degree : int
        The degree of ``poly()``; 0 otherwise.
    powers : bool
        ``poly(x, k, raw = TRUE)``: the powers x, x^2, ... instead of orthogonal polynomials.
    center, scaled : bool
        ``scale()``'s ``center`` and ``scale`` arguments.
    """

    kind: str
    label: str
    node: tuple
    degree: int = 0
    powers: bool = False
    center: bool = True
    scaled: bool = True

    @property
    def columns(self) -> list[str]:
        """The data columns it reads."""
        return columns_of(self.node)

    def raw(self, data: pd.DataFrame) -> pd.Series | np.ndarray:
        """Its values before any fitted step: the column itself, or the arithmetic's numbers."""
        if self.node[0] == "col" and self.kind in ("column", "factor"):
            return data[self.node[1]]
        return evaluate(self.node, data, self.label)


@dataclass(frozen=True, eq=False)
class Variable:
    """A formula variable fitted to the data: how it turns any rows into model-matrix columns.

    Attributes
    ----------
    spec : Spec
    levels : list
        The factor's levels in order (empty for a numeric variable).
    ordered : bool
        An ordered factor, coded by polynomial contrasts.
    center, scale : float
        ``scale()``'s centre and scale (the training data's mean and SD).
    alpha, norm2 : numpy.ndarray or None
        ``poly()``'s recurrence coefficients (R's ``attr(, "coefs")``).
    """

    spec: Spec
    levels: tuple = ()
    ordered: bool = False
    center: float = 0.0
    scale: float = 1.0
    alpha: np.ndarray | None = None
    norm2: np.ndarray | None = None

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def is_factor(self) -> bool:
        return bool(self.levels)

    def suffixes(self) -> list[str]:
        """Name suffixes of a numeric variable's columns ("" for one column, "1".."k" for poly)."""
        return [str(k) for k in range(1, self.spec.degree + 1)] if self.spec.kind == "poly" else [""]

    def numeric(self, data: pd.DataFrame) -> np.ndarray:
        """Its columns (rows x len(suffixes())) for the rows of `data`."""
        x = np.asarray(self.spec.raw(data), dtype=float)
        if self.spec.kind == "scale":
            return ((x - self.center) / self.scale)[:, None]
        if self.spec.kind == "poly" and self.spec.powers:
            return np.column_stack([x**k for k in range(1, self.spec.degree + 1)])
        if self.spec.kind == "poly":
            return poly_columns(x, self.alpha, self.norm2)
        return x[:, None]

    def codes(self, data: pd.DataFrame) -> np.ndarray:
        """The level index of each row; an error names values the fit has not seen."""
        raw = self.spec.raw(data)
        values = raw if isinstance(raw, pd.Series) else pd.Series(raw)
        codes = factor_codes(values, list(self.levels))
        if (codes < 0).any():
            unseen = pd.unique(values[codes < 0])
            raise ValueError(f"{self.label!r} has level(s) {sorted(map(level_label, unseen))[:10]} that the model "
                             f"was not fitted with (its levels are {[level_label(x) for x in self.levels][:20]})")
        return codes

    def contrast_names(self, how: str) -> list[str]:
        """Column names of a factor coded with contrasts ("contrast") or one indicator per level ("full")."""
        if how == "full":
            return [f"{self.label}{level_label(v)}" for v in self.levels]
        if self.ordered:
            return [f"{self.label}{s}" for s in contr_poly_names(len(self.levels))]
        return [f"{self.label}{level_label(v)}" for v in self.levels[1:]]

    def factor_columns(self, data: pd.DataFrame, how: str) -> np.ndarray:
        """A factor's columns: indicators, treatment or polynomial contrasts."""
        codes = self.codes(data)
        n = len(self.levels)
        if how == "full":
            matrix = np.eye(n)
        elif self.ordered:
            matrix = contr_poly(n)
        else:
            matrix = np.eye(n)[:, 1:]
        return matrix[codes]


def fit_variable(spec: Spec, full: pd.DataFrame, used: np.ndarray) -> Variable:
    """Learn what a variable needs from the data, as R's model.frame does.

    ``scale()`` and ``poly()`` see every row where their input is present
    (R evaluates them before dropping incomplete rows); a factor's levels are
    those present in the rows used (R's ``drop.unused.levels``).
    """
    if spec.kind in ("column", "factor"):
        raw = spec.raw(full)
        values = raw if isinstance(raw, pd.Series) else pd.Series(raw)
        if spec.kind == "factor" or is_factor(values):
            return _fit_factor(spec, values[used] if isinstance(raw, pd.Series) else values[used])
        return Variable(spec)
    x = np.asarray(spec.raw(full), dtype=float)
    if spec.kind == "scale":
        return _fit_scale(spec, x[~np.isnan(x)])
    if spec.kind == "poly":
        return _fit_poly(spec, x)
    return Variable(spec)


def _fit_factor(spec: Spec, values: pd.Series) -> Variable:
    levels = factor_levels(values)
    ordered = isinstance(values.dtype, pd.CategoricalDtype) and bool(values.cat.ordered)
    if len(levels) < 2:
        shown = level_label(levels[0]) if levels else "none"
        what = f"column {spec.label!r}" if spec.kind == "column" else spec.label
        raise ValueError(f"{what} has a single value ({shown!r}) in the rows used, "
                         "so it cannot be a predictor")
    return Variable(spec, levels=tuple(levels), ordered=ordered)


def _fit_scale(spec: Spec, present: np.ndarray) -> Variable:
    """R's scale(): centre by the mean; divide by the SD (the root mean square when not centred)."""
    center = float(present.mean()) if spec.center else 0.0
    if len(present) < 2:
        raise ValueError(f"{spec.label}: fewer than two values, so there is no spread to scale by")
    scale = float(np.sqrt(np.sum((present - center) ** 2) / (len(present) - 1))) if spec.scaled else 1.0
    if scale == 0:
        raise ValueError(f"{spec.label}: its input has the same value in every row, so it cannot be scaled")
    return Variable(spec, center=center, scale=scale)


def _fit_poly(spec: Spec, x: np.ndarray) -> Variable:
    if np.isnan(x).any():
        raise ValueError(f"{spec.label}: {int(np.isnan(x).sum())} missing value(s) in its input; poly() "
                         "cannot use them (R refuses them too): drop those rows first")
    distinct = len(np.unique(x))
    if spec.degree >= distinct:
        raise ValueError(f"{spec.label}: the degree must be less than the number of distinct values "
                         f"({distinct})")
    if spec.powers:
        return Variable(spec)
    alpha, norm2 = poly_coefficients(x, spec.degree)
    return Variable(spec, alpha=alpha, norm2=norm2)
