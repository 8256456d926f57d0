"""Lay a chapter's cells out on lecture slides of 1280x720.

A chapter is written to be read; a slide is looked at while the teacher talks. Two steps turn the
one into the other, both applied to the deck only (the book and the student notebooks keep every
word):

1. ``move_prose_to_notes``: in each Markdown cell, running prose (a paragraph of more than
   ``PROSE_WORDS`` words) becomes the speaker notes of the slide it was on. Headings, short
   sentences, lists, equations, tables, exercises and boxes (admonitions) stay on the slide. Each
   block that stays becomes a cell of its own, so that the next step can break a slide between
   any two of them; a heading, or a short line ending in a colon, stays with what follows it.
2. ``paginate``: the height of every cell is estimated from its text, code, tables and figures at
   the deck's font sizes, and a slide whose content would be taller than ``BUDGET`` pixels is
   continued on a new (vertical) slide headed "<heading> (continued)". A code cell whose input and
   output together do not fit is shown as its code and then its output; code that alone does not
   fit is cut at blank lines before top-level statements (between two functions, say); a long
   list or table is cut between items or rows. A slide is never cut right after its heading: a
   cell too tall for any slide (a long output, a function longer than a slide) stays under it.

The estimates are deliberately simple; the deck still scales a slide that turns out too tall down
to 75% (on the screen and, before reveal.js cuts the pages, in print), and ``tools/check_browser.py``
and ``tools/handouts.py`` fail on any slide that does not fit even then.
"""

from __future__ import annotations

import base64
import copy
import math
import re
import struct
from dataclasses import dataclass
from functools import lru_cache

import nbformat

PROSE_WORDS = 30
BUDGET = 620  # px of estimated content per slide; a slide has about 680 px below its top edge
BREAKS = ("slide", "subslide")
CONTINUED = "(continued)"

# Deck metrics in slide pixels (see slides_template/static/deck.css).
TEXT_LINE = 25 * 1.35
TEXT_CHARS = 92  # characters of running text on one line of a slide
CODE_LINE = 18 * 1.3
CODE_CHARS = 108
CELL_GAP = 14
HEADING = {1: 64 * 1.15 + 29, 2: 40 * 1.15 + 18, 3: 34 * 1.15 + 15, 4: 28 * 1.15 + 13}
HEADING_CHARS = {1: 34, 2: 55, 3: 64, 4: 78}
TABLE_ROW = 37  # 22 px text (deck.css), read from the back of a room
TABLE_LINE = 22 * 1.35  # a line of text in a table cell; a row adds its padding and rule
TABLE_WIDTH = 1256  # px inside the slide's side margins
TABLE_CHAR = 10.5  # px, an average character at 22 px
TABLE_PAD = 0.6 * 22 * 2  # px of padding left and right in each cell
CODE_CELL_MARGIN = 0.7 * 25  # a code cell's margins (0.2em above, 0.5em below)
DATAFRAME_ROW = 35  # 21 px text
FIGURE_MAX = 470
FIGURE_WIDTH = 1220


def slide_type(cell) -> str:
    return (cell.metadata.get("slideshow") or {}).get("slide_type", "-")


def set_slide_type(cell, kind: str) -> None:
    cell.metadata.setdefault("slideshow", {})["slide_type"] = kind


class BreakHandOn:
    """Carries the ``slide``/``subslide`` break of cells that will not be on a slide (removed, or
    turned into notes) to the next cell that will, so that a slide boundary is never lost."""

    def __init__(self) -> None:
        self.pending: str | None = None

    def leave(self, kind: str) -> None:
        """A cell of slide type ``kind`` will not be on a slide."""
        if kind in BREAKS and self.pending != "slide":
            self.pending = kind

    def place(self, cell) -> None:
        """``cell`` goes into the deck: the first one shown on a slide takes the carried break."""
        kind = slide_type(cell)
        if kind in ("notes", "skip"):
            return
        if self.pending and kind not in BREAKS:
            set_slide_type(cell, self.pending)
        self.pending = None


# --- Markdown blocks ---------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.colon_fence import colon_fence_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    return MarkdownIt("commonmark").enable("table").use(dollarmath_plugin).use(colon_fence_plugin)


@dataclass
class Block:
    kind: str  # heading, paragraph, list, math, table, fence, quote, other
    text: str
    level: int = 0  # heading level

    @property
    def words(self) -> int:
        return len(self.text.split())

    @property
    def is_prose(self) -> bool:
        return self.kind == "paragraph" and self.words > PROSE_WORDS

    @property
    def leads_in(self) -> bool:
        """A heading, or a short line that introduces what follows (ends with a colon)."""
        return self.kind == "heading" or (self.kind == "paragraph" and self.text.rstrip().endswith(":"))


_KINDS = {"heading_open": "heading", "paragraph_open": "paragraph", "bullet_list_open": "list",
          "ordered_list_open": "list", "math_block": "math", "math_block_label": "math",
          "table_open": "table", "fence": "fence", "code_block": "fence", "blockquote_open": "quote",
          "colon_fence": "fence"}


def blocks(source: str) -> list[Block]:
    """The top-level blocks of a Markdown (or MyST) text, each with its own lines of source."""
    lines = source.splitlines()
    found = []
    for token in _parser().parse(source):
        if token.level != 0 or token.nesting == -1 or not token.map:
            continue
        start, end = token.map
        kind = _KINDS.get(token.type, "other")
        if kind == "fence" and token.info.strip() == "{math}":
            kind = "math"
        level = int(token.tag[1]) if kind == "heading" else 0
        found.append(Block(kind, "\n".join(lines[start:end]).strip("\n"), level))
    return found


# --- step 1: prose to the speaker notes --------------------------------------------------------

def _markdown(text: str, kind: str = "-") -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text)
    set_slide_type(cell, kind)
    return cell


_LEAD = re.compile(r"^(\*\*[^*\n]{1,60}[.:?]\*\*)\s+(?=\S)")


def _with_leads(found: list[Block]) -> list[Block]:
    """A prose paragraph that opens with a bold lead ("**Data.** ...") keeps the lead on the slide."""
    out = []
    for block in found:
        lead = _LEAD.match(block.text) if block.is_prose else None
        if lead:
            out.append(Block("paragraph", lead.group(1)))
            out.append(Block("paragraph", block.text))
        else:
            out.append(block)
    return out


def split_markdown(cell) -> list:
    """One Markdown cell as slide cells (one per block, lead-ins glued on) and notes cells.

    The first slide cell keeps the cell's slide type. When the cell opens a slide but all of it is
    prose, the prose becomes notes and the slide break is handed on (the caller does that).
    """
    kind = slide_type(cell)
    if kind in ("notes", "skip"):
        return [cell]
    groups: list[tuple[str, list[str]]] = []  # ("slide" | "notes", texts)
    glue = False
    for block in _with_leads(blocks(cell.source)):
        target = "notes" if block.is_prose else "slide"
        if target == "slide" and glue and groups and groups[-1][0] == "slide":
            groups[-1][1].append(block.text)
        elif groups and groups[-1][0] == target == "notes":
            groups[-1][1].append(block.text)
        else:
            groups.append((target, [block.text]))
        if target == "slide":
            glue = block.leads_in
    if not any(target == "slide" for target, _ in groups):
        return [_markdown("\n\n".join(t for _, texts in groups for t in texts), "notes")]
    # A slide never opens with its notes: notes that come before the first block on the slide
    # follow that block instead.
    first = next(i for i, (target, _) in enumerate(groups) if target == "slide")
    if first:
        groups.insert(0, groups.pop(first))
    out = []
    for index, (target, texts) in enumerate(groups):
        new = _markdown("\n\n".join(texts), "notes" if target == "notes" else (kind if index == 0 else "-"))
        new.metadata["tags"] = list(cell.metadata.get("tags", []))
        out.append(new)
    return out


def move_prose_to_notes(cells: list) -> list:
    """Every Markdown cell split by ``split_markdown``; a slide break never gets lost with the prose."""
    out, breaks = [], BreakHandOn()
    for cell in cells:
        parts = split_markdown(cell) if cell.cell_type == "markdown" else [cell]
        if cell.cell_type == "markdown" and all(slide_type(part) == "notes" for part in parts):
            breaks.leave(slide_type(cell))
        for part in parts:
            breaks.place(part)
            out.append(part)
    return out


# --- heights -----------------------------------------------------------------------------------

_INLINE_MATH = re.compile(r"\$([^$]+)\$")
_MARKUP = re.compile(r"\*\*|__|`|\[([^\]]*)\]\([^)]*\)")


def _visible_chars(text: str) -> int:
    """Roughly how many characters a line of Markdown shows (TeX is shorter than its source)."""
    text = _INLINE_MATH.sub(lambda m: "x" * max(1, len(re.sub(r"\\[a-zA-Z]+|[{}_^]", "", m.group(1)))), text)
    text = _MARKUP.sub(lambda m: m.group(1) or "", text)
    return len(" ".join(text.split()))


def _text_lines(text: str, chars: int = TEXT_CHARS) -> int:
    return max(1, math.ceil(_visible_chars(text) / chars))


_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix|cases|array)\}(.*?)\\end\{\1\}", re.S)
_TALL = ("\\frac", "\\underbrace", "\\overbrace", "\\sum", "\\prod", "\\int", "\\sqrt", "\\bigg", "\\Big")


def _math_height(tex: str) -> float:
    """A display equation: each row as tall as its tallest part (a fraction, a matrix of r rows)."""
    matrices = []

    def placeholder(match: re.Match) -> str:
        matrices.append(match.group(2).count("\\\\") + 1)
        return f" MATRIX{len(matrices) - 1} "

    flat = _MATRIX.sub(placeholder, tex)
    total = 0.0
    for row in flat.split("\\\\"):
        height = 50.0 if any(s in row for s in _TALL) else 40.0
        for index in re.findall(r"MATRIX(\d+)", row):
            height = max(height, 30.0 * matrices[int(index)] + 22)
        total += height
    return total + 30


def block_height(block: Block) -> float:
    if block.kind == "heading":
        text = block.text.lstrip("#").strip()
        lines = max(1, math.ceil(_visible_chars(text) / HEADING_CHARS.get(block.level, 78)))
        return HEADING.get(block.level, HEADING[4]) * lines
    if block.kind == "math":
        return _math_height(block.text)
    if block.kind == "table":
        return _table_height(block.text)
    if block.kind == "fence":
        return len(block.text.splitlines()) * CODE_LINE + 20
    if block.kind == "list":
        items = re.split(r"(?m)^\s*(?:[-*+]|\d+[.)])\s+", block.text)
        lines = sum(_text_lines(item, TEXT_CHARS - 4) for item in items if item.strip())
        return lines * TEXT_LINE + (len(items) - 1) * 5 + 12
    if block.kind == "quote":
        return sum(block_height(b) for b in blocks(re.sub(r"(?m)^>\s?", "", block.text))) + 10
    lines = sum(_text_lines(part) for part in block.text.split("\n\n"))
    return lines * TEXT_LINE + 12


def _table_cells(text: str) -> list[list[str]]:
    """The cells of a Markdown table, row by row, without the separator row."""
    rows = [line.strip().strip("|") for line in text.splitlines() if line.strip().startswith("|")]
    cells = [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)] for row in rows]
    return [row for row in cells if not all(re.fullmatch(r":?-+:?", cell) for cell in row if cell)]


def _column_widths(cells: list[list[str]]) -> list[float]:
    """Text width (px) of each column, shared out roughly as a browser lays out a table: every
    column gets its longest word, and the room left goes to the columns with the most text."""
    columns = max((len(row) for row in cells), default=0)
    text = [[_visible_chars(row[c]) if c < len(row) else 0 for row in cells] for c in range(columns)]
    words = [[max((_visible_chars(w) for w in row[c].split()), default=0) if c < len(row) else 0
              for row in cells] for c in range(columns)]
    widest = [max(col, default=0) * TABLE_CHAR for col in text]
    narrowest = [max(col, default=0) * TABLE_CHAR for col in words]
    room = TABLE_WIDTH - TABLE_PAD * columns
    if sum(widest) <= room:
        return [max(w, TABLE_CHAR) for w in widest]
    spare, stretch = max(0.0, room - sum(narrowest)), sum(widest) - sum(narrowest)
    return [max(n + spare * (w - n) / max(stretch, 1.0), TABLE_CHAR) for n, w in zip(narrowest, widest)]


def _table_height(text: str) -> float:
    """A table: each row as many lines as its most wrapped cell."""
    cells = _table_cells(text)
    widths = _column_widths(cells)
    lines = [max((math.ceil(_visible_chars(cell) * TABLE_CHAR / width) for cell, width in zip(row, widths)),
                 default=1) for row in cells]
    return sum(max(1, n) * TABLE_LINE + TABLE_ROW - TABLE_LINE for n in lines) + 20


def markdown_height(source: str) -> float:
    return sum(block_height(block) for block in blocks(source)) + CELL_GAP


def _png_size(data: str) -> tuple[int, int] | None:
    raw = base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4))
    if raw[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", raw[16:24])


def _text_height(text: str) -> float:
    lines = sum(max(1, math.ceil(len(line) / CODE_CHARS)) for line in text.rstrip("\n").splitlines())
    return max(1, lines) * CODE_LINE + 12


def output_height(output) -> float:
    if output.get("output_type") == "stream":
        return _text_height(output.get("text", ""))
    data = output.get("data", {})
    if "image/png" in data:
        size = _png_size(data["image/png"])
        width, height = size if size else (900, 400)
        return min(FIGURE_MAX, height, height * FIGURE_WIDTH / max(width, 1)) + 12
    if "image/svg+xml" in data:
        return FIGURE_MAX
    if "text/html" in data:
        page = "".join(data["text/html"])
        rows = page.count("<tr")
        if rows:
            return rows * DATAFRAME_ROW + 20
        return _text_height(re.sub(r"<[^>]+>", "", page))
    if "text/markdown" in data:
        return markdown_height("".join(data["text/markdown"]))
    if "text/latex" in data:
        return _math_height("".join(data["text/latex"]))
    if "text/plain" in data:
        return _text_height("".join(data["text/plain"]))
    return 0.0


def input_height(cell) -> float:
    if (cell.metadata.get("transient") or {}).get("remove_source"):
        return 0.0
    return _text_height(cell.source) + 8


def cell_height(cell) -> float:
    if slide_type(cell) in ("notes", "skip"):
        return 0.0
    if cell.cell_type == "markdown":
        return markdown_height(cell.source)
    outputs = sum(output_height(o) for o in cell.get("outputs", []))
    return input_height(cell) + outputs + CELL_GAP + CODE_CELL_MARGIN


# --- step 2: pages -----------------------------------------------------------------------------

def _heading(cell) -> str | None:
    if cell.cell_type != "markdown":
        return None
    for block in blocks(cell.source):
        if block.kind == "heading" and block.level >= 2:
            return block.text.lstrip("#").strip().removesuffix(CONTINUED).strip()
        break
    return None


def _split_code(cell) -> list:
    """A code cell as its code (no output) and its output (no code)."""
    code, output = copy.deepcopy(cell), copy.deepcopy(cell)
    code.outputs = []
    output.metadata["transient"] = {"remove_source": True}
    set_slide_type(output, "-")
    return [code, output]


_ITEM = re.compile(r"^(?P<mark>[-*+]|(?P<number>\d+)[.)])\s")


def _split_block(cell, budget: float) -> list:
    """A Markdown cell that is one long list or table, cut into pieces that fit ``budget`` each.

    A list is cut between items (a numbered list goes on counting), a table between rows (each
    piece repeats the header).
    """
    found = blocks(cell.source)
    if not found or found[-1].kind not in ("list", "table") or not all(b.leads_in for b in found[:-1]):
        return [cell]
    lead = "\n\n".join(b.text for b in found[:-1])
    lines = found[-1].text.splitlines()
    if found[-1].kind == "list":
        starts = [i for i, line in enumerate(lines) if _ITEM.match(line)]
        units = [lines[a:b] for a, b in zip(starts, starts[1:] + [len(lines)])]
        head: list[str] = []
    else:
        head, units = lines[:2], [[line] for line in lines[2:]]
    pieces, current, number = [], [], 0
    for unit in units:
        text = "\n".join(head + [line for u in current + [unit] for line in u])
        if current and markdown_height(f"{lead}\n\n{text}" if lead and not pieces else text) > budget:
            pieces.append(current)
            current = []
        current.append(unit)
    pieces.append(current)
    if len(pieces) == 1:
        return [cell]
    out = []
    for index, piece in enumerate(pieces):
        text = head + [line for unit in piece for line in unit]
        item = _ITEM.match(text[len(head)]) if found[-1].kind == "list" else None
        if item and item.group("number") and index:
            text[0] = re.sub(r"^\d+", str(number + 1), text[0])
        number += len(piece)
        new = copy.deepcopy(cell)
        new.source = "\n".join(text) if index or not lead else f"{lead}\n\n" + "\n".join(text)
        if index:
            set_slide_type(new, "-")
        out.append(new)
    return out


_TOP_LEVEL = re.compile(r"\n[ \t]*\n(?=\S)")


def _split_source(cell, room: float) -> list:
    """A code cell whose code is taller than ``room``, cut at the blank lines before top-level
    statements (between two functions, or a function and its use) into pieces that fit ``room``
    where they can; the output stays with the last piece."""
    parts = [part.strip("\n") for part in _TOP_LEVEL.split(cell.source)]
    pieces: list[list[str]] = [[]]
    for part in parts:
        trial = "\n\n".join(pieces[-1] + [part])
        if pieces[-1] and _text_height(trial) + 8 + CELL_GAP + CODE_CELL_MARGIN > room:
            pieces.append([])
        pieces[-1].append(part)
    out = []
    for index, piece in enumerate(pieces):
        new = copy.deepcopy(cell)
        new.source = "\n\n".join(piece)
        if index < len(pieces) - 1:
            new.outputs = []
        if index:
            set_slide_type(new, "-")
        out.append(new)
    return out


def _fit_cell(cell, room: float) -> list:
    """A cell as pieces no taller than ``room`` where a piece can be cut: a long list or table
    between items or rows, long code at a top-level blank line, code and its output apart."""
    if cell_height(cell) <= room or cell.cell_type not in ("code", "markdown"):
        return [cell]
    if cell.cell_type == "markdown":
        return _split_block(cell, room)
    if not input_height(cell):
        return [cell]
    if input_height(cell) + CELL_GAP + CODE_CELL_MARGIN > room:
        pieces = _split_source(cell, room)
        if len(pieces) > 1:
            return pieces[:-1] + _fit_cell(pieces[-1], room)
    return _split_code(cell) if cell.get("outputs") else [cell]


def paginate(cells: list, budget: float = BUDGET) -> list:
    """Start a continuation slide wherever the estimated content of a slide exceeds ``budget``."""
    expanded = [piece for cell in cells for piece in _fit_cell(cell, budget - HEADING[2])]
    out, used, heading, shown = [], 0.0, None, False
    for cell in expanded:
        kind = slide_type(cell)
        if kind in ("notes", "skip"):
            out.append(cell)
            continue
        height = cell_height(cell)
        if kind in BREAKS:
            used, heading, shown = 0.0, _heading(cell) or heading, False
        elif shown and used + height > budget:
            title = f"## {heading} {CONTINUED}" if heading else f"## {CONTINUED}"
            out.append(_markdown(title, "subslide"))
            used, shown = markdown_height(title), False
            if kind == "fragment":
                set_slide_type(cell, "-")
        heading = _heading(cell) or heading
        used += height
        shown = shown or not _only_headings(cell)
        out.append(cell)
    return out


def _only_headings(cell) -> bool:
    """A Markdown cell of headings alone: a slide holding only such cells is not broken after them
    (the heading would stand alone on it)."""
    return cell.cell_type == "markdown" and all(b.kind == "heading" for b in blocks(cell.source))


def page_heights(cells: list) -> list[float]:
    """The estimated content height of each slide, in order (for checking the estimates)."""
    heights: list[float] = []
    for cell in cells:
        kind = slide_type(cell)
        if kind in ("notes", "skip"):
            continue
        if not heights or kind in BREAKS:
            heights.append(0.0)
        heights[-1] += cell_height(cell)
    return heights
