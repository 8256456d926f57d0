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

from mlmcourse.transforms import (
    FORMULA_FUNCTIONS,
    MATH_FUNCTIONS,
    Spec,
    Variable,
    deparse,
    evaluate,
    factor_codes,
    factor_levels,
    factorize,
    fit_variable,
    is_factor,
    level_label,
)

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
        The response as R prints it: a column name, or ``"log(Reaction)"``.
    fixed_terms : tuple of tuple of str
        Fixed-effect terms other than the intercept, in R's order (by degree);
        each variable is named as R prints it (``"SES"``, ``"I(SES^2)"``).
    intercept : bool
        Whether the fixed part has an intercept.
    random : tuple of RandomTerm
        The random-effect terms, ``||`` and ``/`` expanded.
    variables : tuple of str
        The fixed part's variables in order of appearance.
    specs : dict
        Every variable name (and the response's and offsets') -> its
        :class:`~mlmcourse.transforms.Spec` (column, arithmetic, scale, poly,
        factor or offset).
    offsets : tuple of str
        The ``offset()`` terms, added to the linear predictor as they are.
    """

    text: str
    response: str
    fixed_terms: tuple[Term, ...]
    intercept: bool
    random: tuple[RandomTerm, ...]
    variables: tuple[str, ...] = field(default=())
    specs: dict = field(default_factory=dict, compare=False)
    offsets: tuple[str, ...] = ()

    def columns_of(self, names) -> list[str]:
        """The data columns read by the named variables, in order, without repeats."""
        out = []
        for name in names:
            spec = self.specs.get(name)
            out += spec.columns if spec is not None else [name]
        return list(dict.fromkeys(out))

    @property
    def fixed_columns(self) -> list[str]:
        """The data columns the fixed part and the offsets read (what a population prediction needs)."""
        return self.columns_of([*self.variables, *self.offsets])

    @property
    def columns(self) -> list[str]:
        """Every data column the model uses, the response's first, without repeats."""
        names = [self.response, *self.variables, *self.offsets]
        for term in self.random:
            names += [*term.variables, *term.grouping]
        return self.columns_of(names)

    @property
    def grouping_columns(self) -> list[str]:
        """The columns that define groups."""
        return list(dict.fromkeys(v for term in self.random for v in term.grouping))


# --------------------------------------------------------------------- tokens
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>`[^`]+`|[A-Za-z_.][A-Za-z0-9_.]*)"
    r"|(?P<op>\|\||[-+*:/^|()~,=])|(?P<bad>\S))"
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
        self.specs: dict[str, Spec] = {}

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
            return self.term_call(value, offset)
        if kind == "name" and value == ".":
            raise FormulaError(f"formula {self.text!r}: '.' (all other columns) is not supported; name the predictors")
        if kind == "name":
            self.specs.setdefault(value, Spec("column", value, ("col", value)))
            return ("var", value)
        if kind == "number":
            if value not in ("0", "1"):
                raise FormulaError(f"formula {self.text!r}: the number {value} is not a term (only 0 and 1 are); "
                                   "write arithmetic inside I(), e.g. I(2 * x)")
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

    # ---------------------------------------------------- calls and arithmetic
    def term_call(self, name: str, offset: int):
        """A function call used as a term: I(), log(), scale(), poly(), factor(), offset(), ..."""
        if name not in FORMULA_FUNCTIONS:
            raise _function_error(self.text, offset, name)
        args = self.call_args(name)
        label = f"{name}({', '.join(_deparse_arg(key, node) for key, node in args)})"
        if name == "poly":
            bound = self.bind(name, args, ("x", "degree", "raw"), required=2)
            degree = bound["degree"]
            if degree[0] != "num" or not float(degree[1]).is_integer() or degree[1] < 1:
                raise FormulaError(f"formula {self.text!r}: poly() needs a column and a whole-number degree, "
                                   "e.g. poly(x, 2)")
            spec = Spec("poly", label, bound["x"], int(degree[1]), powers=self.logical(bound.get("raw"), False))
        elif name == "scale":
            bound = self.bind(name, args, ("x", "center", "scale"), required=1)
            spec = Spec("scale", label, bound["x"], center=self.logical(bound.get("center"), True),
                        scaled=self.logical(bound.get("scale"), True))
        else:
            node = self.bind(name, args, ("x",), required=1)["x"]
            spec = Spec(name, label, node) if name in ("factor", "offset") else \
                Spec("arith", label, ("call", name, [node]))
        self.specs[spec.label] = spec
        return ("offset", spec.label) if name == "offset" else ("var", spec.label)

    def bind(self, name: str, args: list, params: tuple, required: int) -> dict:
        """Match positional and keyword arguments to a function's parameters, as R does."""
        bound = {}
        for position, (key, node) in enumerate(args):
            key = key or (params[position] if position < len(params) else None)
            if key not in params or key in bound:
                raise FormulaError(f"formula {self.text!r}: {name}() takes the arguments "
                                   f"{', '.join(params)}; {_deparse_arg(key, node)} is not one of them"
                                   if key not in params else f"formula {self.text!r}: {name}() has two {key!r}")
            bound[key] = node
        missing = [p for p in params[:required] if p not in bound]
        if missing:
            raise FormulaError(f"formula {self.text!r}: {name}() needs {' and '.join(missing)}"
                               + (", e.g. poly(x, 2)" if name == "poly" else ""))
        return bound

    def logical(self, node, default: bool) -> bool:
        if node is None:
            return default
        if node[0] == "col" and node[1] in ("TRUE", "T", "FALSE", "F"):
            return node[1] in ("TRUE", "T")
        raise FormulaError(f"formula {self.text!r}: expected TRUE or FALSE, not {deparse(node)}, as in "
                           "scale(x, center = TRUE or FALSE) and poly(x, 2, raw = TRUE or FALSE)")

    def call_args(self, name: str) -> list:
        """The arguments of a call as (keyword or None, expression) pairs."""
        self.take()  # "("
        args = []
        while True:
            key = None
            if self.pos + 1 < len(self.tokens) and self.tokens[self.pos][0] == "name" and \
                    self.tokens[self.pos + 1][1] == "=":
                key = self.take()[1]
                self.take()
            args.append((key, self.arith_sum()))
            if self.peek() != ",":
                break
            self.take()
        if self.peek() != ")":
            raise self.fail(f"{name}() is not closed, or has something other than arithmetic inside")
        self.take()
        return args

    def arith_sum(self):
        node = self.arith_product()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            node = ("bin", op, node, self.arith_product())
        return node

    def arith_product(self):
        node = self.arith_unary()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            node = ("bin", op, node, self.arith_unary())
        return node

    def arith_unary(self):
        if self.peek() == "-":
            self.take()
            return ("neg", self.arith_unary())
        return self.arith_power()

    def arith_power(self):
        base = self.arith_atom()
        if self.peek() == "^":
            self.take()
            return ("bin", "^", base, self.arith_unary())
        return base

    def arith_atom(self):
        kind, value, offset = self.take()
        if kind == "number":
            return ("num", float(value))
        if kind == "name" and self.peek() == "(":
            if value not in MATH_FUNCTIONS and value != "I":
                raise _function_error(self.text, offset, value, inside=True)
            node = self.bind(value, self.call_args(value), ("x",), required=1)["x"]
            return ("call", value, [node])
        if kind == "name":
            return ("col", value)
        if value == "(":
            inner = self.arith_sum()
            if self.peek() != ")":
                raise self.fail("missing ')' in arithmetic")
            self.take()
            return ("paren", inner)
        self.pos -= 1
        raise self.fail(f"unexpected {value!r} in arithmetic")


def _deparse_arg(key: str | None, node) -> str:
    return deparse(node) if key is None else f"{key} = {deparse(node)}"


def _function_error(text: str, offset: int, name: str, inside: bool = False) -> FormulaError:
    allowed = ", ".join(f"{f}()" for f in (("I", *MATH_FUNCTIONS) if inside else FORMULA_FUNCTIONS))
    hint = ""
    if name in ("C", "Q"):
        hint = (" (that is patsy's syntax; in R's, a text or categorical column is already a factor, "
                "factor(x) makes one of a numeric column, and a column name needs no quoting)")
    where = "inside arithmetic " if inside else ""
    return FormulaError(f"formula {text!r}: {name}() cannot be used {where}in a formula{hint}; the functions "
                        f"that can are {allowed}. Otherwise create the column first and use its name")


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
    if op == "offset":
        raise FormulaError(f"formula {text!r}: {node[1]} must be added on its own with '+'")
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
        if "(" in node[1]:
            raise FormulaError(f"formula {text!r}: the grouping factor {node[1]} must be a column name (a text, "
                               "categorical or numeric column; its distinct values are the groups)")
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
    return _parse(formula)


def parse_rhs(rhs: str) -> ParsedFormula:
    """Read a right-hand side alone (``"Sector + MEANSES"``), as a formula without a response.

    Examples
    --------
    >>> parse_rhs("Sector * MEANSES").fixed_terms
    (('Sector',), ('MEANSES',), ('Sector', 'MEANSES'))
    """
    if not isinstance(rhs, str):
        raise TypeError(f"the right-hand side must be a string like 'x + z', not {type(rhs).__name__}")
    return _parse(rhs.strip().lstrip("~").strip() or "1", one_sided=True)


def _parse(formula: str, one_sided: bool = False) -> ParsedFormula:
    if not isinstance(formula, str):
        raise TypeError(f"the formula must be a string like 'y ~ x + (1 | g)', not {type(formula).__name__}")
    tokens = _tokens(formula)
    tildes = [i for i, tok in enumerate(tokens) if tok[1] == "~"]
    if one_sided:
        if tildes:
            raise FormulaError(f"{formula!r} must be a right-hand side only, without '~'")
        lhs, rhs = [], tokens
        response = Spec("column", "", ("col", ""))
    elif len(tildes) != 1:
        raise FormulaError(f"formula {formula!r} must have exactly one '~' between the response and the predictors")
    else:
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
    return _assemble(formula, response, tree, parser.specs)


def _response(formula: str, lhs: list) -> Spec:
    if not lhs:
        raise FormulaError(f"formula {formula!r} has no response on the left of '~'")
    if len(lhs) == 1 and lhs[0][0] == "name":
        return Spec("column", lhs[0][1], ("col", lhs[0][1]))
    parser = _Parser(formula, lhs)
    node = parser.arith_sum()
    if parser.pos < len(lhs):
        raise parser.fail("the response must be one column or arithmetic on columns, such as log(y)")
    return Spec("arith", deparse(node), node)


def _assemble(formula: str, response: Spec, tree, specs: dict) -> ParsedFormula:
    fixed_nodes, random, offsets = [], [], []
    for positive, node in _split_sum(tree):
        inner = node
        while isinstance(inner, tuple) and inner[0] == "()":
            inner = inner[1]
        if isinstance(inner, _Bar):
            if not positive:
                raise FormulaError(f"formula {formula!r}: a random-effect term cannot be subtracted")
            random += _random_terms(inner, formula)
        elif isinstance(inner, tuple) and inner[0] == "offset":
            if not positive:
                raise FormulaError(f"formula {formula!r}: {inner[1]} cannot be subtracted")
            offsets.append(inner[1])
        else:
            fixed_nodes.append((positive, node))
    order = [response.label]
    fixed = _Terms([])
    for positive, node in fixed_nodes:
        fixed = _combine(fixed, _eval(node, formula, order), positive)
    terms, intercept = _r_order(fixed, order)
    if any(response.label in term for term in terms):
        raise FormulaError(f"formula {formula!r}: the response {response.label!r} also appears as a predictor")
    specs = {**specs, response.label: response} if response.label else dict(specs)
    return ParsedFormula(formula, response.label, terms, intercept, tuple(random), tuple(order[1:]),
                         specs, tuple(offsets))


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
    used, codes = np.unique(combined, return_inverse=True)
    parts = []
    for levels in reversed(level_lists):
        parts.append(np.asarray([level_label(v) for v in levels], dtype=object)[used % len(levels)])
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
