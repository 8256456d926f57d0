"""The design stage: a parsed formula meets the data.

:func:`model_frame` checks the data against a
:class:`~mlmcourse.formula.ParsedFormula`, evaluates the transformations and
keeps the complete rows; :func:`fixed_design` and :func:`random_design` build
the model matrices with lme4's column names (R's contrasts rule);
:func:`regression_design` does both for a single-level regression and drops
collinear columns, as ``lm()`` does. lme4 calls these steps ``model.frame``,
``model.matrix`` and ``mkReTrms`` (Bates et al. 2015, section 2).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from itertools import product

import numpy as np
import pandas as pd

from mlmcourse.formula import ColumnNotFoundError, FormulaError, ParsedFormula, RandomTerm, Term, parse_formula
from mlmcourse.transforms import (
    Spec,
    Variable,
    evaluate,
    factorize,
    fit_variable,
    is_factor,
    level_label,
    level_labels,
)

__all__ = [
    "ModelFrame",
    "Coding",
    "RandomBlock",
    "RegressionDesign",
    "model_frame",
    "fixed_design",
    "random_design",
    "design_matrix",
    "group_codes",
    "regression_design",
    "independent_columns",
]


# ------------------------------------------------------------- the data
def _missing_column(name: str, columns: list[str], role: str) -> ColumnNotFoundError:
    lower = {str(c).lower(): c for c in columns}
    close = [lower[name.lower()]] if name.lower() in lower else difflib.get_close_matches(name, map(str, columns), 1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ColumnNotFoundError(f"column {name!r} is not in the data{hint}; the formula uses it as {role}")


def _roles(parsed: ParsedFormula, extra: dict[str, str]) -> dict[str, str]:
    """Each data column the model reads -> its role, in words (for error messages)."""
    roles = dict.fromkeys(parsed.columns_of([parsed.response]), "the response") if parsed.response else {}
    for name in parsed.columns_of([*parsed.variables, *parsed.offsets]):
        roles.setdefault(name, "a fixed-effect predictor")
    for term in parsed.random:
        for name in parsed.columns_of(term.variables):
            roles.setdefault(name, f"a random effect in {term}")
        for name in term.grouping:
            roles.setdefault(name, f"the grouping factor in {term}")
    for name, role in extra.items():
        roles.setdefault(name, role)
    return roles


def _check_column(name: str, values: pd.Series, role: str) -> None:
    if role == "the response":
        if is_factor(values) and not pd.api.types.is_bool_dtype(values):
            raise TypeError(f"the response {name!r} is not numeric (its type is {values.dtype}); "
                            "a linear model needs a numeric response")
    elif values.dtype == object and not values.dropna().map(lambda v: isinstance(v, str)).all():
        raise TypeError(f"column {name!r} mixes text with other values; convert it to numbers or to text")
    elif not (pd.api.types.is_numeric_dtype(values) or is_factor(values)) or \
            pd.api.types.is_datetime64_any_dtype(values):
        raise TypeError(f"column {name!r} has type {values.dtype}, which cannot be used in a model formula")
    if pd.api.types.is_float_dtype(values):
        n_inf = int(np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).sum())
        if n_inf:
            raise ValueError(f"column {name!r} has {n_inf} infinite value(s); replace or remove them before fitting")


@dataclass(frozen=True, eq=False)
class ModelFrame:
    """The data a model is fitted to, with what the formula's variables learned from them.

    Attributes
    ----------
    data : pandas.DataFrame
        The data columns the model reads, complete rows only (original index
        kept, unused categories removed).
    variables : dict
        Variable name -> fitted :class:`~mlmcourse.transforms.Variable`
        (``scale()``'s centre and scale, ``poly()``'s coefficients, factor
        levels), to code these and any new rows alike.
    response : numpy.ndarray
        The response's values (after its transformation, e.g. ``log(y)``).
    offset : numpy.ndarray
        The sum of the ``offset()`` terms (zeros without one).
    messages : list of str
        What was done to the data (rows dropped), for the caller to report.
    """

    data: pd.DataFrame
    variables: dict
    response: np.ndarray
    offset: np.ndarray
    messages: list


def model_frame(parsed: ParsedFormula, data: pd.DataFrame, extra: dict[str, str] | None = None) -> ModelFrame:
    """Check the data against a formula, evaluate its variables and keep the complete rows.

    Parameters
    ----------
    parsed : ParsedFormula
    data : pandas.DataFrame
    extra : dict, optional
        Further columns the model needs (e.g. a grouping column given apart
        from the formula) -> their role in words; they count for missing values.

    Returns
    -------
    ModelFrame

    Raises
    ------
    TypeError, ColumnNotFoundError (a KeyError), ValueError
        Not a DataFrame, missing column, non-numeric response, infinite values
        (also produced by a transformation, such as log(0)), no rows, a
        response without variation, a grouping factor with a single level or
        one group per row.

    Notes
    -----
    As R's ``model.frame``: transformations are evaluated on all rows, a row
    is dropped when any value it needs is missing (or a transformation is
    undefined there, such as the log of a negative number), and ``scale()``
    and ``poly()`` learn their parameters from every row where their input is
    present.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.formula import parse_formula
    >>> mf = model_frame(parse_formula("log(Reaction) ~ scale(Days) + (1 | Subject)"), mlmcourse.load("sleepstudy"))
    >>> round(float(mf.response[0]), 4), round(mf.variables["scale(Days)"].scale, 4)
    (5.5197, 2.8803)
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("data has no rows")
    roles = _roles(parsed, extra or {})
    columns = list(data.columns)
    for name, role in roles.items():
        if name not in columns:
            raise _missing_column(name, columns, role)
        if columns.count(name) > 1:
            raise ValueError(f"the data have more than one column named {name!r}")
        _check_column(name, data[name], role)
    full = data[list(roles)]
    missing, messages = _missing_rows(parsed, full)
    frame = full.loc[~missing].copy()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].cat.remove_unused_categories()
    used = ~missing
    names = [*parsed.variables, *(v for term in parsed.random for v in term.variables)]
    variables = {name: fit_variable(parsed.specs[name], full, used) for name in dict.fromkeys(names)}
    response = _response_values(parsed, frame)
    offset = np.zeros(len(frame))
    for name in parsed.offsets:
        offset = offset + evaluate(parsed.specs[name].node, frame, name)
    for term in parsed.random:
        _check_grouping(term, frame)
    return ModelFrame(frame, variables, response, offset, messages)


def _transformed(parsed: ParsedFormula) -> list[Spec]:
    """Specs whose values are computed from columns (the response's, arithmetic, scale, poly, offsets)."""
    names = [parsed.response, *parsed.variables, *parsed.offsets,
             *(v for term in parsed.random for v in term.variables)]
    specs = [parsed.specs[n] for n in dict.fromkeys(names) if n in parsed.specs]
    return [s for s in specs if s.kind in ("arith", "scale", "poly", "offset") or
            (s.kind == "factor" and s.node[0] != "col")]


def _missing_rows(parsed: ParsedFormula, full: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Rows with a missing value, or where a transformation is undefined; what was dropped, in words."""
    missing_in = full.isna()
    missing = missing_in.to_numpy().any(axis=1)
    messages, undefined = [], {}
    for spec in _transformed(parsed):
        values = evaluate(spec.node, full, spec.label)
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            raise ValueError(f"{spec.label} is infinite in {n_inf} row(s) (for example the log of 0); "
                             "change those values or the transformation")
        bad = np.isnan(values) & ~missing_in[spec.columns].to_numpy().any(axis=1)
        if bad.any():
            undefined[spec.label] = int(bad.sum())
        missing = missing | np.isnan(values)
    if missing.all():
        raise ValueError(f"every row has a missing value (or an undefined transformation) in the model's columns "
                         f"{list(full.columns)}")
    if missing.any():
        counts = {c: int(n) for c, n in missing_in.sum().items() if n}
        detail = [f"missing per column: {', '.join(f'{c!r}: {n}' for c, n in counts.items())}"] if counts else []
        detail += [f"{label} is undefined (NaN, e.g. the log of a negative number) in {n} row(s)"
                   for label, n in undefined.items()]
        messages.append(f"{int(missing.sum())} row(s) with missing values were dropped ({'; '.join(detail)}); "
                        f"{int((~missing).sum())} rows are used")
    return missing, messages


def _response_values(parsed: ParsedFormula, frame: pd.DataFrame) -> np.ndarray:
    if not parsed.response:
        return np.zeros(len(frame))
    y = evaluate(parsed.specs[parsed.response].node, frame, parsed.response)
    if np.ptp(y) == 0:
        raise ValueError(f"the response {parsed.response!r} has the same value ({y[0]:g}) in every row used: "
                         "there is no variation to model")
    return y


def group_codes(frame: pd.DataFrame, grouping: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Integer group codes and level labels of a (possibly combined) grouping factor.

    Levels are in factor order, the first variable varying slowest, as R's
    ``a:b``; time and memory are linear in the rows (only combinations that
    occur are labelled).

    Examples
    --------
    >>> group_codes(pd.DataFrame({"a": ["x", "y", "x"], "b": [2, 1, 1]}), ("a", "b"))
    (array([1, 2, 0]), ['x:1', 'x:2', 'y:1'])
    """
    combined = np.zeros(len(frame), dtype=np.int64)
    level_lists = []
    for name in grouping:
        codes, levels = factorize(frame[name])
        combined = combined * len(levels) + codes
        level_lists.append(levels)
    if len(grouping) == 1:  # the codes already number the levels present, in order
        return combined, level_labels(level_lists[0])
    used, codes = np.unique(combined, return_inverse=True)
    parts = []
    for levels in reversed(level_lists):
        parts.append(np.asarray(level_labels(levels), dtype=object)[used % len(levels)])
        used = used // len(levels)
    labels = [":".join(combo) for combo in zip(*reversed(parts))]
    if len(grouping) > 1 and len(set(labels)) < len(labels):
        _ambiguous_labels(grouping, labels, level_lists)
    return codes.astype(np.int64), labels


def _ambiguous_labels(grouping: tuple[str, ...], labels: list[str], level_lists: list) -> None:
    seen: set = set()
    clash = next(label for label in labels if label in seen or seen.add(label))
    culprits = [g for g, levels in zip(grouping, level_lists) if any(":" in level_label(v) for v in levels)]
    raise ValueError(f"grouping factor {':'.join(grouping)!r}: different groups would both be labelled {clash!r} "
                     f"because values of {culprits} contain ':'; replace ':' in those values (e.g. with '_')")


def _check_grouping(term: RandomTerm, frame: pd.DataFrame) -> None:
    codes, labels = group_codes(frame, term.grouping)
    name = term.group_name
    if len(labels) < 2:
        raise ValueError(f"grouping factor {name!r} has only one level ({labels[0]!r}) among the rows used: "
                         "a random effect needs at least two groups")
    if len(labels) >= len(frame):
        raise ValueError(f"grouping factor {name!r} has as many levels ({len(labels)}) as there are rows: "
                         f"each row is its own group, so {term} cannot be told apart from the residual")


# ------------------------------------------------------- design matrices
@dataclass(frozen=True)
class Coding:
    """How a list of terms becomes model-matrix columns (R's contrasts rule).

    Attributes
    ----------
    terms : tuple
        Per term, the pairs (variable, how): how is "numeric", "contrast"
        (treatment contrasts, first level the reference; polynomial contrasts
        for an ordered factor) or "full" (one indicator per level).
    intercept : bool
    levels : dict
        The levels of each unordered factor, in order (the first is the reference).
    names : list of str
        The column names, lme4's.
    variables : dict
        Variable name -> fitted :class:`~mlmcourse.transforms.Variable`; it
        codes new data as the training data were (``predict(newdata)``).
    term_names : dict
        Term label (``"SES:Sector"``) -> the names of its columns.
    """

    terms: tuple[tuple[tuple[str, str], ...], ...]
    intercept: bool
    levels: dict[str, list]
    names: list[str]
    variables: dict = field(default_factory=dict, compare=False, repr=False)
    term_names: dict = field(default_factory=dict, compare=False, repr=False)


def _code_terms(terms: tuple[Term, ...], intercept: bool, variables: dict[str, Variable]) -> Coding:
    """R's model.matrix rule: a factor gets contrasts when the rest of its term came earlier."""
    factors = {v for t in terms for v in t if variables[v].is_factor}
    coded, first_factor_done = [], intercept
    for i, term in enumerate(terms):
        pairs = []
        for var in term:
            rest = set(term) - {var}
            earlier = not rest or any(rest <= set(t) for t in terms[:i])
            how = "numeric" if var not in factors else ("contrast" if earlier else "full")
            if how != "numeric" and not first_factor_done:
                how, first_factor_done = "full", True
            pairs.append((var, how))
        coded.append(tuple(pairs))
    names = ["(Intercept)"] if intercept else []
    term_names = {}
    for term in coded:
        parts = [_column_labels(variables[var], how) for var, how in term]
        term_names[":".join(var for var, _ in term)] = [":".join(reversed(c)) for c in product(*reversed(parts))]
        names += term_names[":".join(var for var, _ in term)]
    used = {v: variables[v] for t in terms for v in t}
    levels = {v: list(variables[v].levels) for v in sorted(factors) if not variables[v].ordered}
    return Coding(tuple(coded), intercept, levels, names, used, term_names)


def _column_labels(variable: Variable, how: str) -> list[str]:
    if how == "numeric":
        return [f"{variable.label}{suffix}" for suffix in variable.suffixes()]
    return variable.contrast_names(how)


def _columns(variable: Variable, how: str, frame: pd.DataFrame) -> list[np.ndarray]:
    matrix = variable.numeric(frame) if how == "numeric" else variable.factor_columns(frame, how)
    return list(matrix.T)


def design_matrix(coding: Coding, frame: pd.DataFrame) -> np.ndarray:
    """Model-matrix columns of `coding` for the rows of `frame` (n x len(coding.names)).

    The variables are evaluated with the parameters they learned when the
    model was fitted, so new rows are coded as the training rows were.
    """
    columns = [np.ones(len(frame))] if coding.intercept else []
    for term in coding.terms:
        parts = [_columns(coding.variables[var], how, frame) for var, how in term]
        for combo in product(*reversed(parts)):  # the first variable varies fastest, as in R
            columns.append(np.prod(np.vstack(combo), axis=0))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def fixed_design(parsed: ParsedFormula, frame: ModelFrame | pd.DataFrame) -> tuple[np.ndarray, Coding]:
    """The fixed-effect model matrix X and its coding (names as lme4's).

    `frame` is a :class:`ModelFrame`, or data to build one from.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse.formula import parse_formula
    >>> hs = mlmcourse.load("hsb40")
    >>> f = parse_formula("MathAch ~ SES * Sector + I(SES^2) + (1 | School)")
    >>> fixed_design(f, model_frame(f, hs))[1].names
    ['(Intercept)', 'SES', 'SectorPublic', 'I(SES^2)', 'SES:SectorPublic']
    """
    frame = frame if isinstance(frame, ModelFrame) else model_frame(parsed, frame)
    coding = _code_terms(parsed.fixed_terms, parsed.intercept, frame.variables)
    return design_matrix(coding, frame.data), coding


@dataclass(frozen=True)
class RandomBlock:
    """The columns of one random-effect term and the groups they vary over.

    Attributes
    ----------
    group : str
        Grouping factor name (``"School"``, ``"Class:School"``).
    codes : numpy.ndarray
        Group index (0 .. n_levels-1) of each row.
    labels : list of str
        Group labels in level order.
    coding : Coding
        How the term's columns are made (their names are ``coding.names``).
    columns : numpy.ndarray
        The term's model-matrix columns (rows x terms).
    correlated : bool
    """

    group: str
    codes: np.ndarray
    labels: list[str]
    coding: Coding
    columns: np.ndarray
    correlated: bool
    grouping: tuple[str, ...] = ()


def random_design(parsed: ParsedFormula, frame: ModelFrame | pd.DataFrame) -> list[RandomBlock]:
    """One :class:`RandomBlock` per random-effect term, in the formula's order."""
    frame = frame if isinstance(frame, ModelFrame) else model_frame(parsed, frame)
    blocks = []
    for term in parsed.random:
        coding = _code_terms(term.terms, term.intercept, frame.variables)
        codes, labels = group_codes(frame.data, term.grouping)
        blocks.append(RandomBlock(term.group_name, codes, labels, coding, design_matrix(coding, frame.data),
                                  term.correlated, term.grouping))
    return blocks


# ------------------------------------------------------- regression designs
RANK_TOLERANCE = 1e-7  # R's qr() tolerance, which lm and lme4 use to drop collinear columns


def independent_columns(X: np.ndarray) -> np.ndarray:
    """Keep each column unless it is (numerically) a combination of the kept columns before it.

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [1.0, 2, 3, 5], [2.0, 4, 6, 10]])
    >>> independent_columns(X).tolist()
    [True, True, False]
    """
    keep = np.zeros(X.shape[1], dtype=bool)
    basis = np.empty((X.shape[0], 0))
    for j in range(X.shape[1]):
        column = X[:, j]
        residual = column - basis @ (basis.T @ column)
        residual -= basis @ (basis.T @ residual)  # re-orthogonalize once for accuracy
        norm = np.linalg.norm(residual)
        if norm > RANK_TOLERANCE * max(np.linalg.norm(column), np.finfo(float).tiny):
            keep[j] = True
            basis = np.column_stack([basis, residual / norm])
    return keep


@dataclass(frozen=True, eq=False)
class RegressionDesign:
    """Response and model matrix of a single-level regression formula, lm's names and columns.

    Attributes
    ----------
    response : pandas.Series
        The response (named as R prints it, ``"log(Reaction)"``), minus any
        offset, indexed by the rows used.
    X : pandas.DataFrame
        The model matrix (collinear columns already dropped), columns named as
        R's ``lm()`` names its coefficients.
    frame : ModelFrame
    coding : Coding
        How the columns were made (before dropping), for new data.
    dropped : list of str
        Columns dropped because they are combinations of earlier ones (lm's NA).
    """

    response: pd.Series
    X: pd.DataFrame
    frame: ModelFrame
    coding: Coding
    dropped: list


def regression_design(formula: str, data: pd.DataFrame, extra: dict[str, str] | None = None) -> RegressionDesign:
    """Build y and X of an ordinary regression formula (no random-effect terms), as R's ``lm()``.

    Parameters
    ----------
    formula : str
        E.g. ``"MathAch ~ SES + I(SES^2) + Sector"``.
    data : pandas.DataFrame
    extra : dict, optional
        Other columns the model needs -> their role, e.g. ``{"School": "the grouping column"}``.

    Returns
    -------
    RegressionDesign

    Examples
    --------
    >>> import mlmcourse
    >>> d = regression_design("MathAch ~ poly(SES, 2) * Sector", mlmcourse.load("hsb40"))
    >>> list(d.X.columns)[-2:]
    ['poly(SES, 2)1:SectorPublic', 'poly(SES, 2)2:SectorPublic']
    """
    parsed = parse_formula(formula)
    if parsed.random:
        raise FormulaError(f"formula {formula!r} has a random-effect term {parsed.random[0]}; this estimator "
                           "takes an ordinary regression formula (use mlmcourse.lmer for mixed models)")
    frame = model_frame(parsed, data, extra)
    X, coding = fixed_design(parsed, frame)
    keep = independent_columns(X)
    dropped = [name for name, k in zip(coding.names, keep) if not k]
    index = frame.data.index
    y = pd.Series(frame.response - frame.offset, index=index, name=parsed.response)
    return RegressionDesign(y, pd.DataFrame(X[:, keep], index=index, columns=[n for n, k in zip(coding.names, keep)
                                                                               if k]),
                            frame, coding, dropped)
