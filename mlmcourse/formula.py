"""lme4 model formulas: parsing, checking against the data, design matrices.

A formula such as ``MathAch ~ SES * Sector + (1 + SES | School)`` is read in
three steps, each a small function:

1. :func:`parse_formula` turns the text into a :class:`ParsedFormula`: the
   response, the fixed-effect terms (in R's order) and the random-effect terms
   (``(x || g)`` and ``(1 | a/b)`` already expanded, as lme4 does).
2. :func:`model_frame` checks the data against it (missing columns, response
   type, infinite values, one-level grouping factors) and drops incomplete rows.
3. :func:`fixed_design` and :func:`random_design` build the fixed-effect matrix
   X with lme4's column names (treatment contrasts, first level the reference)
   and one block of random-effect columns per random term.

Nothing here fits a model; :mod:`mlmcourse.lmm` does that.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from itertools import product

import numpy as np
import pandas as pd

__all__ = [
    "ColumnNotFoundError",
    "FormulaError",
    "ParsedFormula",
    "RandomTerm",
    "parse_formula",
    "model_frame",
    "fixed_design",
    "random_design",
]

Term = tuple[str, ...]  # the variables of one term, in the formula's variable order


class FormulaError(ValueError):
    """A model formula that cannot be read; the message names the offending part."""


class ColumnNotFoundError(KeyError):
    """A formula names a column that the data do not have."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term ``(lhs | grouping)`` after lme4's expansions.

    Attributes
    ----------
    terms : tuple of tuple of str
        The non-intercept terms of the left-hand side, in R's order.
    intercept : bool
        Whether the term has a random intercept.
    grouping : tuple of str
        The variables whose combinations define the groups (``("Class", "School")``
        for ``Class:School``).
    correlated : bool
        False for the pieces of a ``||`` term.
    variables : tuple of str
        The left-hand side's variables in order of appearance.
    """

    terms: tuple[Term, ...]
    intercept: bool
    grouping: tuple[str, ...]
    correlated: bool = True
    variables: tuple[str, ...] = ()

    @property
    def group_name(self) -> str:
        """The grouping factor's name as lme4 prints it, e.g. ``"Class:School"``."""
        return ":".join(self.grouping)

    def __str__(self) -> str:
        lhs = " + ".join((["1"] if self.intercept else ["0"]) + [":".join(t) for t in self.terms])
        return f"({lhs} | {self.group_name})"


@dataclass(frozen=True)
class ParsedFormula:
    """A parsed lme4 formula.

    Attributes
    ----------
    text : str
        The formula as given.
    response : str
        The response column.
    fixed_terms : tuple of tuple of str
        Fixed-effect terms other than the intercept, in R's order (by degree).
    intercept : bool
        Whether the fixed part has an intercept.
    random : tuple of RandomTerm
        The random-effect terms, ``||`` and ``/`` expanded.
    variables : tuple of str
        The fixed part's variables in order of appearance, response first.
    """

    text: str
    response: str
    fixed_terms: tuple[Term, ...]
    intercept: bool
    random: tuple[RandomTerm, ...]
    variables: tuple[str, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        """Every data column the model uses, response first, without repeats."""
        names = [self.response, *self.variables]
        for term in self.random:
            names += [*term.variables, *term.grouping]
        return list(dict.fromkeys(names))

    @property
    def grouping_columns(self) -> list[str]:
        """The columns that define groups."""
        return list(dict.fromkeys(v for term in self.random for v in term.grouping))


# --------------------------------------------------------------------- tokens
_TOKEN = re.compile(
    r"\s*(?:(?P<name>`[^`]+`|[A-Za-z_.][A-Za-z0-9_.]*)|(?P<number>\d+(?:\.\d*)?)"
    r"|(?P<op>\|\||[-+*:/^|()~,])|(?P<bad>\S))"
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "bad":
            raise FormulaError(f"formula {text!r}: unexpected character {value!r}")
        if kind == "name":
            value = value.strip("`")
        out.append((kind, value, match.start(kind)))
    return out


# ---------------------------------------------------------------------- parser
@dataclass
class _Bar:
    lhs: object
    group: object
    double: bool
    text: str


class _Parser:
    """Recursive descent over R's formula operators: + - < * / < : < ^."""

    def __init__(self, text: str, tokens: list[tuple[str, str, int]]):
        self.text, self.tokens, self.pos = text, tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        if self.pos >= len(self.tokens):
            raise FormulaError(f"formula {self.text!r} ends too early (a term is missing after the last operator)")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def fail(self, what: str) -> FormulaError:
        where = self.tokens[self.pos][2] if self.pos < len(self.tokens) else len(self.text)
        return FormulaError(f"formula {self.text!r}: {what} at {self.text[where:where + 20]!r}")

    def sum(self):
        if self.peek() == "-":  # a leading minus, as in "y ~ -1 + x"
            self.take()
            node = ("-", ("empty",), self.product())
        else:
            node = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            node = (op, node, self.product())
        return node

    def product(self):
        node = self.colon()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            node = (op, node, self.colon())
        return node

    def colon(self):
        node = self.power()
        while self.peek() == ":":
            self.take()
            node = (":", node, self.power())
        return node

    def power(self):
        node = self.atom()
        if self.peek() == "^":
            self.take()
            kind, value, _ = self.take()
            if kind != "number" or not value.isdigit() or int(value) < 1:
                raise FormulaError(f"formula {self.text!r}: '^' needs a whole number, not {value!r}")
            node = ("^", node, int(value))
        return node

    def atom(self):
        start = self.pos
        kind, value, offset = self.take()
        if kind == "name" and self.peek() == "(":
            raise _function_error(self.text, offset)
        if kind == "name" and value == ".":
            raise FormulaError(f"formula {self.text!r}: '.' (all other columns) is not supported; name the predictors")
        if kind == "name":
            return ("var", value)
        if kind == "number":
            if value not in ("0", "1"):
                raise FormulaError(f"formula {self.text!r}: the number {value} is not a term (only 0 and 1 are)")
            return ("num", value)
        if value == "(":
            inner = self.sum()
            if self.peek() in ("|", "||"):
                double = self.take()[1] == "||"
                if self.peek() in (")", None):
                    raise self.fail("no grouping factor after '|'")
                group = self.sum()
                node = _Bar(inner, group, double, "")
            else:
                node = ("()", inner)
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.take()
            if isinstance(node, _Bar):
                first, last = self.tokens[start][2], self.tokens[self.pos - 1][2]
                node.text = self.text[first:last + 1]
            return node
        self.pos -= 1
        raise self.fail(f"unexpected {value!r}")


def _function_error(text: str, offset: int) -> FormulaError:
    depth, end = 0, offset
    for end in range(offset, len(text)):
        depth += text[end] == "("
        depth -= text[end] == ")"
        if text[end] == ")" and depth == 0:
            break
    call = text[offset:end + 1]
    name = call.split("(")[0].strip()
    return FormulaError(
        f"{call} is a function call, which the formula cannot evaluate: create the column "
        f"first (e.g. data['new_name'] = ... computed with numpy) and use its name in the formula"
        + (" (I() and ^ inside it are R's way of writing arithmetic)" if name == "I" else "")
    )


# ------------------------------------------------------------ term algebra
@dataclass
class _Terms:
    terms: list[frozenset]  # frozenset() is the intercept
    no_intercept: bool = False


def _eval(node, text: str, order: list[str]) -> _Terms:
    """Evaluate a fixed-part AST to R's term list (frozensets of variables)."""
    if isinstance(node, _Bar):
        raise FormulaError(f"formula {text!r}: the random-effect term {node.text} cannot be combined with "
                           "'*', ':', '/' or '^'; add it with '+'")
    op = node[0]
    if op == "var":
        if node[1] not in order:
            order.append(node[1])
        return _Terms([frozenset([node[1]])])
    if op == "num":
        return _Terms([frozenset()]) if node[1] == "1" else _Terms([], no_intercept=True)
    if op == "empty":
        return _Terms([])
    if op == "()":
        return _eval(node[1], text, order)
    if op == "^":
        base = _plain(_eval(node[1], text, order), text, "^")
        result = list(base)
        for _ in range(node[2] - 1):
            result = _unique(result + [a | b for a in result for b in base])
        return _Terms(result)
    left, right = _eval(node[1], text, order), _eval(node[2], text, order)
    if op in ("+", "-"):
        return _combine(left, right, op == "+")
    a, b = _plain(left, text, op), _plain(right, text, op)
    cross = _unique([x | y for x in a for y in b])
    if op == ":":
        return _Terms(cross)
    if op == "*":
        return _Terms(_unique(a + b + cross))
    whole = frozenset().union(*a)  # '/': a/b is a + (all of a):b
    return _Terms(_unique(a + [whole | y for y in b]))


def _plain(terms: _Terms, text: str, op: str) -> list[frozenset]:
    if terms.no_intercept or frozenset() in terms.terms:
        raise FormulaError(f"formula {text!r}: 0 and 1 cannot be used with {op!r}")
    return terms.terms


def _unique(terms: list[frozenset]) -> list[frozenset]:
    return list(dict.fromkeys(terms))


def _r_order(terms: _Terms, order: list[str]) -> tuple[tuple[Term, ...], bool]:
    """R's terms(): drop the intercept into a flag, sort terms by degree (stable)."""
    intercept = not terms.no_intercept
    kept = [t for t in terms.terms if t]
    kept.sort(key=len)
    return tuple(tuple(v for v in order if v in t) for t in kept), intercept


# ------------------------------------------------------------ random terms
def _grouping(node, text: str) -> list[tuple[str, ...]]:
    """Grouping factors of a bar: g, a:b, a/b (-> a and b:a, as lme4 expands it)."""
    if isinstance(node, tuple) and node[0] == "var":
        return [(node[1],)]
    if isinstance(node, tuple) and node[0] == "()":
        return _grouping(node[1], text)
    if isinstance(node, tuple) and node[0] == ":":
        left, right = _grouping(node[1], text), _grouping(node[2], text)
        if len(left) == 1 and len(right) == 1:
            return [left[0] + right[0]]
    if isinstance(node, tuple) and node[0] == "/":
        left, right = _grouping(node[1], text), _grouping(node[2], text)
        if len(right) == 1:
            return left + [right[0] + left[-1]]
    raise FormulaError(f"formula {text!r}: the grouping factor after '|' must be a column name, "
                       "a:b (groups of a and b combined) or a/b (b nested in a)")


def _random_terms(bar: _Bar, text: str) -> list[RandomTerm]:
    order: list[str] = []
    terms, intercept = _r_order(_eval(bar.lhs, text, order), order)
    if not terms and not intercept:
        raise FormulaError(f"random-effect term {bar.text} has no effects on the left of '|'")
    out = []
    for group in _grouping(bar.group, text):
        if not bar.double:
            out.append(RandomTerm(terms, intercept, group, True, tuple(order)))
            continue
        if intercept:  # lme4's expandDoubleVerts: (1 + x || g) -> (1 | g) + (0 + x | g)
            out.append(RandomTerm((), True, group, True, ()))
        out += [RandomTerm((t,), False, group, True, tuple(v for v in order if v in t)) for t in terms]
    return out


def _split_sum(node) -> list:
    """The top-level summands of the right-hand side, with their signs."""
    if isinstance(node, tuple) and node[0] in ("+", "-"):
        return _split_sum(node[1]) + [(node[0] == "+", node[2])]
    return [(True, node)]


def parse_formula(formula: str) -> ParsedFormula:
    """Read an lme4 model formula.

    Parameters
    ----------
    formula : str
        ``"response ~ fixed part + (random | group) + ..."``. The fixed part uses
        R's operators ``+``, ``-``, ``*``, ``:``, ``/``, ``^``, ``0``/``-1`` (no
        intercept); random terms are ``(1 | g)``, ``(1 + x | g)``, ``(x | g)``,
        ``(0 + x | g)``, ``(1 + x || g)`` (uncorrelated), ``(1 | a/b)`` (nested)
        and ``(1 | a:b)``.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    TypeError
        When `formula` is not a string.
    FormulaError (a ValueError)
        When the formula cannot be read; the message names the offending part.

    Notes
    -----
    Terms are ordered as R's ``terms()`` orders them (main effects, then
    two-way interactions, ...), and the variables inside an interaction in
    order of first appearance, so names match lme4's (``"SES:SectorPublic"``).

    Examples
    --------
    >>> f = parse_formula("MathAch ~ SES * Sector + (SES || School)")
    >>> f.fixed_terms
    (('SES',), ('Sector',), ('SES', 'Sector'))
    >>> [str(t) for t in f.random]
    ['(1 | School)', '(0 + SES | School)']
    """
    if not isinstance(formula, str):
        raise TypeError(f"the formula must be a string like 'y ~ x + (1 | g)', not {type(formula).__name__}")
    tokens = _tokens(formula)
    tildes = [i for i, tok in enumerate(tokens) if tok[1] == "~"]
    if len(tildes) != 1:
        raise FormulaError(f"formula {formula!r} must have exactly one '~' between the response and the predictors")
    lhs, rhs = tokens[: tildes[0]], tokens[tildes[0] + 1:]
    response = _response(formula, lhs)
    if not rhs:
        raise FormulaError(f"formula {formula!r} has nothing on the right of '~'")
    parser = _Parser(formula, rhs)
    tree = parser.sum()
    if parser.pos < len(rhs):
        token = rhs[parser.pos][1]
        hint = " (a random-effect term must be in parentheses, e.g. (1 | g))" if token in ("|", "||") else ""
        raise parser.fail(f"unexpected {token!r}{hint}")
    return _assemble(formula, response, tree)


def _response(formula: str, lhs: list) -> str:
    if len(lhs) == 1 and lhs[0][0] == "name":
        return lhs[0][1]
    if not lhs:
        raise FormulaError(f"formula {formula!r} has no response on the left of '~'")
    if len(lhs) > 1 and lhs[0][0] == "name" and lhs[1][1] == "(":
        raise _function_error(formula, lhs[0][2])
    raise FormulaError(f"formula {formula!r}: the response must be one column name; "
                       "create a transformed response as a column first")


def _assemble(formula: str, response: str, tree) -> ParsedFormula:
    fixed_nodes, random = [], []
    for positive, node in _split_sum(tree):
        inner = node
        while isinstance(inner, tuple) and inner[0] == "()":
            inner = inner[1]
        if isinstance(inner, _Bar):
            if not positive:
                raise FormulaError(f"formula {formula!r}: a random-effect term cannot be subtracted")
            random += _random_terms(inner, formula)
        else:
            fixed_nodes.append((positive, node))
    order = [response]
    fixed = _Terms([])
    for positive, node in fixed_nodes:
        fixed = _combine(fixed, _eval(node, formula, order), positive)
    terms, intercept = _r_order(fixed, order)
    if any(response in term for term in terms):
        raise FormulaError(f"formula {formula!r}: the response {response!r} also appears as a predictor")
    return ParsedFormula(formula, response, terms, intercept, tuple(random), tuple(order[1:]))


def _combine(acc: _Terms, part: _Terms, positive: bool) -> _Terms:
    if positive:
        no_int = (acc.no_intercept or part.no_intercept) and frozenset() not in part.terms
        return _Terms(_unique(acc.terms + part.terms), no_int)
    drop = set(part.terms)
    no_int = (acc.no_intercept or frozenset() in drop) and not part.no_intercept
    return _Terms([t for t in acc.terms if t not in drop], no_int)


# ------------------------------------------------------------- the data
def _missing_column(name: str, columns: list[str], role: str) -> ColumnNotFoundError:
    lower = {str(c).lower(): c for c in columns}
    close = [lower[name.lower()]] if name.lower() in lower else difflib.get_close_matches(name, map(str, columns), 1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ColumnNotFoundError(f"column {name!r} is not in the data{hint}; the formula uses it as {role}")


def _roles(parsed: ParsedFormula) -> dict[str, str]:
    roles = {parsed.response: "the response"}
    for name in parsed.variables:
        roles.setdefault(name, "a fixed-effect predictor")
    for term in parsed.random:
        for name in term.variables:
            roles.setdefault(name, f"a random effect in {term}")
        for name in term.grouping:
            roles.setdefault(name, f"the grouping factor in {term}")
    return roles


def is_factor(values: pd.Series) -> bool:
    """Whether a column is coded by levels (categorical, string or boolean), as R's factors."""
    return not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def factor_levels(values: pd.Series) -> list:
    """The levels present in a factor column: category order, else sorted values."""
    present = pd.unique(values.dropna())
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [c for c in values.cat.categories if c in set(present)]
    return sorted(present)


def level_label(level) -> str:
    """How R prints a level: TRUE/FALSE for booleans, 3 rather than 3.0."""
    if isinstance(level, (bool, np.bool_)):
        return "TRUE" if level else "FALSE"
    if isinstance(level, (float, np.floating)) and float(level).is_integer():
        return str(int(level))
    return str(level)


def _check_column(name: str, values: pd.Series, role: str) -> None:
    if role == "the response":
        if is_factor(values) and not pd.api.types.is_bool_dtype(values):
            raise TypeError(f"the response {name!r} is not numeric (its type is {values.dtype}); "
                            "a linear mixed model needs a numeric response")
    elif values.dtype == object and not values.dropna().map(lambda v: isinstance(v, str)).all():
        raise TypeError(f"column {name!r} mixes text with other values; convert it to numbers or to text")
    elif not (pd.api.types.is_numeric_dtype(values) or is_factor(values)) or \
            pd.api.types.is_datetime64_any_dtype(values):
        raise TypeError(f"column {name!r} has type {values.dtype}, which cannot be used in a model formula")
    if pd.api.types.is_float_dtype(values):
        n_inf = int(np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).sum())
        if n_inf:
            raise ValueError(f"column {name!r} has {n_inf} infinite value(s); replace or remove them before fitting")


def model_frame(parsed: ParsedFormula, data: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Check the data against a formula and keep the complete rows of the used columns.

    Parameters
    ----------
    parsed : ParsedFormula
    data : pandas.DataFrame

    Returns
    -------
    frame : pandas.DataFrame
        The used columns, rows with a missing value dropped (listwise), original
        index kept, unused categories removed.
    messages : list of str
        What was done to the data (rows dropped), for the caller to report.

    Raises
    ------
    TypeError, ColumnNotFoundError (a KeyError), ValueError
        Not a DataFrame, missing column, non-numeric response, infinite values,
        no rows, a grouping factor with a single level or one group per row.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("data has no rows")
    roles = _roles(parsed)
    columns = list(data.columns)
    for name, role in roles.items():
        if name not in columns:
            raise _missing_column(name, columns, role)
        if columns.count(name) > 1:
            raise ValueError(f"the data have more than one column named {name!r}")
        _check_column(name, data[name], role)
    frame = data[list(roles)]
    missing = frame.isna()
    messages = []
    if missing.to_numpy().any():
        counts = {c: int(n) for c, n in missing.sum().items() if n}
        dropped = int(missing.any(axis=1).sum())
        if dropped == len(frame):
            raise ValueError(f"every row has a missing value in the model's columns {sorted(counts)}")
        detail = ", ".join(f"{c!r}: {n}" for c, n in counts.items())
        messages.append(f"{dropped} row(s) with missing values were dropped (missing per column: {detail}); "
                        f"{len(frame) - dropped} rows are used")
        frame = frame.loc[~missing.any(axis=1)]
    frame = frame.copy()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].cat.remove_unused_categories()
    for term in parsed.random:
        _check_grouping(term, frame)
    return frame, messages


def group_codes(frame: pd.DataFrame, grouping: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Integer group codes and level labels of a (possibly combined) grouping factor.

    Levels are in factor order, the first variable varying slowest, as R's ``a:b``.
    """
    codes = np.zeros(len(frame), dtype=np.int64)
    labels = [""]
    for name in grouping:
        values = frame[name]
        levels = factor_levels(values) if is_factor(values) else sorted(pd.unique(values))
        index = pd.Index(levels)
        codes = codes * len(levels) + index.get_indexer(values)
        labels = [f"{a}:{level_label(b)}" if a else level_label(b) for a in labels for b in levels]
    used, codes = np.unique(codes, return_inverse=True)
    return codes.astype(np.int64), [labels[i] for i in used]


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
        (treatment contrasts, first level the reference) or "full" (one
        indicator per level).
    intercept : bool
    levels : dict
        The levels of each factor, in order.
    names : list of str
        The column names, lme4's.
    """

    terms: tuple[tuple[tuple[str, str], ...], ...]
    intercept: bool
    levels: dict[str, list]
    names: list[str]


def _code_terms(terms: tuple[Term, ...], intercept: bool, frame: pd.DataFrame) -> Coding:
    """R's model.matrix rule: a factor gets contrasts when the rest of its term came earlier."""
    factors = {v for t in terms for v in t if is_factor(frame[v])}
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
    levels = {v: factor_levels(frame[v]) for v in sorted(factors)}
    for var, lev in levels.items():
        if len(lev) < 2:
            raise ValueError(f"column {var!r} has a single value ({level_label(lev[0])!r}) in the rows used, "
                             "so it cannot be a predictor")
    names = ["(Intercept)"] if intercept else []
    for term in coded:
        parts = [_column_labels(var, how, levels.get(var)) for var, how in term]
        names += [":".join(reversed(combo)) for combo in product(*reversed(parts))]
    return Coding(tuple(coded), intercept, levels, names)


def _column_labels(var: str, how: str, levels: list | None) -> list[str]:
    if how == "numeric":
        return [var]
    use = levels[1:] if how == "contrast" else levels
    return [f"{var}{level_label(level)}" for level in use]


def _columns(var: str, how: str, frame: pd.DataFrame, levels: list | None) -> list[np.ndarray]:
    values = frame[var]
    if how == "numeric":
        return [values.to_numpy(dtype=float)]
    use = levels[1:] if how == "contrast" else levels
    unseen = set(pd.unique(values.dropna())) - set(levels)
    if unseen:
        raise ValueError(f"column {var!r} has level(s) {sorted(map(level_label, unseen))} that the model "
                         f"was not fitted with (its levels are {[level_label(x) for x in levels]})")
    return [(values == level).to_numpy(dtype=float) for level in use]


def design_matrix(coding: Coding, frame: pd.DataFrame) -> np.ndarray:
    """Model-matrix columns of `coding` for the rows of `frame` (n x len(coding.names))."""
    columns = [np.ones(len(frame))] if coding.intercept else []
    for term in coding.terms:
        parts = [_columns(var, how, frame, coding.levels.get(var)) for var, how in term]
        for combo in product(*reversed(parts)):  # the first variable varies fastest, as in R
            columns.append(np.prod(np.vstack(combo), axis=0))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def fixed_design(parsed: ParsedFormula, frame: pd.DataFrame) -> tuple[np.ndarray, Coding]:
    """The fixed-effect model matrix X and its coding (names as lme4's).

    Examples
    --------
    >>> import mlmcourse
    >>> hs = mlmcourse.load("hsb40")
    >>> f = parse_formula("MathAch ~ SES * Sector + (1 | School)")
    >>> fixed_design(f, hs)[1].names
    ['(Intercept)', 'SES', 'SectorPublic', 'SES:SectorPublic']
    """
    coding = _code_terms(parsed.fixed_terms, parsed.intercept, frame)
    return design_matrix(coding, frame), coding


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


def random_design(parsed: ParsedFormula, frame: pd.DataFrame) -> list[RandomBlock]:
    """One :class:`RandomBlock` per random-effect term, in the formula's order."""
    blocks = []
    for term in parsed.random:
        coding = _code_terms(term.terms, term.intercept, frame)
        codes, labels = group_codes(frame, term.grouping)
        blocks.append(RandomBlock(term.group_name, codes, labels, coding, design_matrix(coding, frame),
                                  term.correlated, term.grouping))
    return blocks
