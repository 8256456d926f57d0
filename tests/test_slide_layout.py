"""tools/slide_layout.py and the cross-references of tools/coursenb.py, on small made-up cells."""

import base64
import struct
import sys
import zlib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import coursenb  # noqa: E402  (tools/ is not a package)
import slide_layout as layout  # noqa: E402

PROSE = ("Pooling every school into one regression treats thirty pupils from one classroom as if "
         "they were thirty independent draws, which understates every standard error that the "
         "software prints for a school-level predictor.")


def md(text, kind=None):
    cell = nbformat.v4.new_markdown_cell(text)
    if kind:
        layout.set_slide_type(cell, kind)
    return cell


def code(source, text_output=None, png=None):
    cell = nbformat.v4.new_code_cell(source)
    if text_output is not None:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text_output)]
    if png is not None:
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
    return cell


def _png(width, height):
    """A real (tiny, blank) PNG header of the given size, base64 as Jupyter stores it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    return base64.b64encode(raw).decode()


def kinds(cells):
    return [layout.slide_type(c) for c in cells]


# --- prose to the speaker notes ----------------------------------------------------------------

def test_long_prose_goes_to_the_notes_and_short_lines_stay():
    cell = md(f"## Why pool?\n\n{PROSE}\n\nShort point stays.", "slide")
    out = layout.move_prose_to_notes([cell])
    on_slide = [c.source for c in out if layout.slide_type(c) != "notes"]
    notes = [c.source for c in out if layout.slide_type(c) == "notes"]
    assert notes == [PROSE]
    assert on_slide == ["## Why pool?", "Short point stays."]
    assert kinds(out)[0] == "slide"


def test_a_bold_lead_stays_on_the_slide_and_its_paragraph_goes_to_the_notes():
    out = layout.move_prose_to_notes([md(f"**Data.** {PROSE}")])
    assert [c.source for c in out] == ["**Data.**", f"**Data.** {PROSE}"]
    assert kinds(out) == ["-", "notes"]


def test_lists_equations_and_tables_stay_and_a_lead_in_line_is_glued_to_them():
    text = "The model:\n\n$$\ny_{ij} = \\beta_0 + u_j + e_{ij}\n$$\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    out = layout.move_prose_to_notes([md(text)])
    assert all(layout.slide_type(c) != "notes" for c in out)
    assert out[0].source.startswith("The model:\n\n$$")
    assert [c.source.split("\n")[0] for c in out[1:]] == ["- one", "| a | b |"]


def test_a_slide_of_prose_only_hands_its_break_to_the_next_cell():
    out = layout.move_prose_to_notes([md(PROSE, "slide"), code("x = 1")])
    assert kinds(out) == ["notes", "slide"]


def test_notes_never_open_a_slide():
    out = layout.move_prose_to_notes([md(f"{PROSE}\n\n## Heading", "slide")])
    assert kinds(out) == ["slide", "notes"]
    assert out[0].source == "## Heading"


# --- heights -----------------------------------------------------------------------------------

def test_taller_content_is_estimated_taller():
    assert layout.markdown_height("- a\n- b\n- c\n- d") > layout.markdown_height("- a\n- b")
    matrix = "$$\n\\begin{pmatrix} a \\\\ b \\\\ c \\\\ d \\end{pmatrix}\n$$"
    assert layout.markdown_height(matrix) > layout.markdown_height("$$\na + b\n$$") + 60
    assert layout.markdown_height("$$\n\\frac{a}{b}\n$$") > layout.markdown_height("$$\na + b\n$$")


def test_a_figure_is_as_tall_as_its_png_scaled_to_the_slide_but_capped():
    small, wide, tall = (layout.cell_height(code("plot()", png=_png(*size)))
                         for size in ((600, 200), (1200, 400), (800, 3000)))
    assert small < wide < tall
    assert tall <= layout.FIGURE_MAX + 100


# --- pagination --------------------------------------------------------------------------------

def test_an_overfull_slide_continues_on_a_subslide_with_its_heading():
    cells = [md("## Estimates", "slide")] + [code(f"print({i})", "\n".join(map(str, range(8))))
                                             for i in range(4)]
    out = layout.paginate(cells)
    titles = [c.source for c in out if layout.slide_type(c) == "subslide"]
    assert titles and all(t == "## Estimates (continued)" for t in titles)
    assert all(h <= layout.BUDGET for h in layout.page_heights(out))
    assert sum(c.cell_type == "code" for c in out) == 4  # nothing lost


def test_a_content_that_fits_is_left_alone():
    cells = [md("## Short", "slide"), code("x = 1", "1")]
    assert layout.paginate(cells) == cells


def test_a_long_numbered_list_is_cut_and_keeps_counting():
    items = "\n".join(f"{i}. item number {i} of a long list with some words" for i in range(1, 31))
    out = layout.paginate([md("## Steps", "slide"), md(items)])
    pieces = [c.source for c in out if c.source.lstrip()[:1].isdigit()]
    assert len(pieces) >= 2
    assert pieces[1].startswith(f"{pieces[0].count(chr(10)) + 2}. ")
    numbers = [int(line.split(".")[0]) for piece in pieces for line in piece.splitlines()]
    assert numbers == list(range(1, 31))


def test_a_long_table_repeats_its_header_on_each_piece():
    rows = "\n".join(f"| school {i} | {i * 3} |" for i in range(40))
    out = layout.paginate([md("## Schools", "slide"), md(f"| School | n |\n|---|---|\n{rows}")])
    pieces = [c.source for c in out if c.source.startswith("| School")]
    assert len(pieces) >= 2
    assert all(p.splitlines()[1] == "|---|---|" for p in pieces)
    assert sum(len(p.splitlines()) - 2 for p in pieces) == 40


def test_a_code_cell_too_tall_with_its_output_is_shown_as_code_then_output():
    cell = code("\n".join(f"step_{i} = {i}" for i in range(12)), "\n".join(map(str, range(22))))
    out = layout.paginate([md("## Fit", "slide"), cell])
    parts = [c for c in out if c.cell_type == "code"]
    assert len(parts) == 2
    assert parts[0].outputs == [] and parts[1].outputs == cell.outputs
    assert parts[1].metadata["transient"] == {"remove_source": True}


def test_a_cell_too_tall_for_any_slide_stays_under_its_heading():
    listing = code("\n".join(f"value_{i} = {i}" for i in range(40)))
    assert layout.cell_height(listing) > layout.BUDGET
    out = layout.paginate([md("## A long listing", "slide"), listing, md("- a point after it")])
    assert [layout.slide_type(c) for c in out] == ["slide", "-", "subslide", "-"]
    assert out[1] is listing and out[2].source == "## A long listing (continued)"


def test_long_code_is_cut_between_top_level_statements_and_keeps_its_output_last():
    body = "\n".join(f"    total = total + {i}" for i in range(14))
    source = (f"def first(total):\n{body}\n    return total\n\n\n"
              f"def second(total):\n{body}\n\n    return total\n\nsecond(first(0))")
    cell = code(source, "42")
    out = layout.paginate([md("## Two functions", "slide"), cell])
    parts = [c for c in out if c.cell_type == "code"]
    assert [p.source.split("(")[0] for p in parts] == ["def first", "def second"]
    assert "\n\n    return total" in parts[1].source  # a blank line inside a function is no cut
    assert "\n\n".join(p.source for p in parts) == source.replace("\n\n\n", "\n\n")
    assert parts[0].outputs == [] and parts[1].outputs == cell.outputs
    assert all(h <= layout.BUDGET for h in layout.page_heights(out))


# --- cross-references outside the book (coursenb) ----------------------------------------------

CHAPTER = nbformat.v4.new_notebook(cells=[
    nbformat.v4.new_markdown_cell("```{math}\n:label: eq-first\na = b\n```\n\n```{math}\n:label: eq-second\nc = d\n```"),
    nbformat.v4.new_markdown_cell("```{exercise} Try it\n:label: ex-try\n\nDo it.\n```"),
    nbformat.v4.new_code_cell("plot()", metadata={"mystnb": {"figure": {"name": "fig-trellis"}}}),
    nbformat.v4.new_markdown_cell("By {eq}`eq-second`, see {ref}`ex-try` and {numref}`fig-trellis`."),
])


def test_references_number_equations_and_exercises_in_page_order():
    names = coursenb.references(CHAPTER)
    assert names == {"eq-first": "(1)", "eq-second": "(2)", "ex-try": "Exercise 1",
                     "fig-trellis": "the figure below"}


def test_labelled_equations_carry_their_number():
    names = coursenb.references(CHAPTER)
    text = coursenb.plain_markdown(CHAPTER.cells[0].source, [0], names)
    assert "\\tag{1}\n$$" in text and "\\tag{2}\n$$" in text
    assert ":label:" not in text


def test_cross_references_read_as_text():
    names = coursenb.references(CHAPTER)
    text = coursenb.plain_markdown(CHAPTER.cells[3].source, [0], names)
    assert text.strip() == "By (2), see Exercise 1 and the figure below."
