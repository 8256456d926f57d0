"""Model formulas, R's way: parsing, checking against the data, design matrices.

One front end serves :func:`mlmcourse.lmer` and every estimator in
:mod:`mlmcourse.estimators`, so a formula means the same, gives the same column
names and fails with the same message everywhere. A formula such as
``log(MathAch) ~ poly(SES, 2) * Sector + (1 + SES | School)`` is read in
three steps, each a small function:

1. :func:`parse_formula` turns the text into a :class:`ParsedFormula`: the
   response, the fixed-effect terms (in R's order), the random-effect terms
   (``(x || g)`` and ``(1 | a/b)`` already expanded, as lme4 does), the
   offsets, and what each variable is (a column, ``I()`` arithmetic,
   ``log()``, ``scale()``, ``poly()``, ``factor()``), named as R prints it.
2. :func:`~mlmcourse.design.model_frame` checks the data against it (missing columns, response
   type, infinite values, one-level grouping factors), evaluates the
   transformations, drops incomplete rows and fits what the variables learn
   from the data (see :mod:`mlmcourse.transforms`).
3. :func:`~mlmcourse.design.fixed_design` and :func:`~mlmcourse.design.random_design` build the fixed-effect matrix
   X with lme4's column names (treatment contrasts for factors, polynomial
   contrasts for ordered factors) and one block of random-effect columns per
   random term; :func:`~mlmcourse.design.regression_design` does the same for a single-level
   regression and drops collinear columns, as ``lm()`` does.

Step 1 lives here, steps 2 and 3 in :mod:`mlmcourse.design` (their names can
also be imported from this module). Nothing here fits a model;
:mod:`mlmcourse.lmm` and :mod:`mlmcourse.estimators` do that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mlmcourse.transforms import (  # noqa: F401  (factor helpers are re-exported for callers)
    FORMULA_FUNCTIONS,
    MATH_FUNCTIONS,
    Spec,
    deparse,
    factor_levels,
    is_factor,
    level_label,
)

__all__ = [
    "ColumnNotFoundError",
    "FormulaError",
    "ParsedFormula",
    "RandomTerm",
    "parse_formula",
    "parse_rhs",
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


# ------------------------------------------------- the design stage's names
_DESIGN_NAMES = {"ModelFrame", "Coding", "RandomBlock", "RegressionDesign", "model_frame", "fixed_design", "random_design", "design_matrix", "group_codes", "regression_design", "independent_columns", "RANK_TOLERANCE"}


def __getattr__(name: str):
    """Names of :mod:`mlmcourse.design`, importable from here too (loaded on first use)."""
    if name in _DESIGN_NAMES:
        from mlmcourse import design

        return getattr(design, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
