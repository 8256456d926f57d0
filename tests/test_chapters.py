"""Every chapter runs, once; its student notebook (with or without solutions) needs no removed cell.

The one execution of each chapter is saved in ``_build/executed/`` and reused by the book and the
slides (``tools/execute.py``). A hidden assertion cell that fails makes the chapter fail here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import coursenb  # noqa: E402  (tools/ is not a package)
import execute  # noqa: E402

CHAPTERS = coursenb.chapters()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_executes(chapter):
    notebook, _ = execute.execute_chapter(chapter)
    execute.save(notebook, chapter)
    # The book is built with warnings as errors, and stderr in a shown cell is a warning there.
    shown = [c for c in notebook.cells if c.cell_type == "code"
             and not {"remove-cell", "remove-output", "remove-stderr"} & set(c.metadata.get("tags", []))]
    stderr = [(c.source.splitlines()[0] if c.source else "", o["text"][:300]) for c in shown
              for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not stderr, f"{chapter.name}: a shown cell writes to stderr (a warning?): {stderr[0]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_student_notebook_needs_no_removed_cell(chapter):
    cells = coursenb.student_notebook(chapter).cells
    assert execute.undefined_names(cells) == [], (
        f"{chapter.name}: these names are used in the student notebook but defined only in a removed "
        "cell or a solution")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_solutions_need_no_hidden_cell(chapter):
    notebook = coursenb.read_chapter(chapter)
    cells = [c for c in notebook.cells if not coursenb.REMOVE_TAGS & set(c.metadata.get("tags", []))]
    assert execute.undefined_names(cells) == [], (
        f"{chapter.name}: a solution or a shown cell uses a name that only a hidden cell defines")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_student_edition_of_the_book_needs_nothing_from_the_solutions(chapter):
    cells = coursenb.drop_solutions(coursenb.read_chapter(chapter).cells)
    assert execute.undefined_names(cells) == [], (
        f"{chapter.name}: without its solutions (make book-student) a cell uses a name only a solution defines")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_no_cell_hides_the_self_check_function(chapter):
    for cell in coursenb.read_chapter(chapter).cells:
        if cell.cell_type == "code" and "from mlmcourse.checks import check" not in cell.source:
            assert "check" not in execute.cell_names(cell.source)[1], (
                f"{chapter.name}: a cell assigns to the name 'check', hiding mlmcourse.checks.check")


def test_student_edition_sources_lose_exactly_the_solution_blocks():
    import student_edition

    text = ("# T\n\n```{exercise} E\n:label: t-ex1\nDo it.\n```\n\n```{code-cell} ipython3\n# Your code here\n```\n\n"
            "```{solution-start} t-ex1\n:class: dropdown\n```\n\n```{code-cell} ipython3\nanswer = 42\n```\n\n"
            "The answer.\n\n```{solution-end}\n```\n\n## Summary\n")
    out = student_edition.without_solutions(text)
    assert "answer = 42" not in out and "The answer." not in out and "solution" not in out
    assert "Do it." in out and "# Your code here" in out and "## Summary" in out
    with pytest.raises(ValueError):
        student_edition.without_solutions("```{solution-start} t-ex1\n```\nno end")


def _cells(*sources, removed=()):
    cells = []
    for i, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source)
        if i in removed:
            cell.metadata["tags"] = ["remove-cell"]
        cells.append(cell)
    return cells


def test_undefined_names_finds_a_name_from_a_removed_cell():
    cells = _cells("import numpy as np\nx = np.ones(3)", "tau = 4.0", "print(x.sum() + tau)", removed={1})
    kept = [c for c in cells if "remove-cell" not in c.metadata.get("tags", [])]
    assert execute.undefined_names(kept) == [(1, "tau")]


def test_undefined_names_sees_globals_used_inside_functions_and_comprehensions():
    cells = _cells("def f(a):\n    return a + offset", "ys = [y * scale for y in range(3)]")
    assert execute.undefined_names(cells) == [(0, "offset"), (1, "scale")]


def test_undefined_names_accepts_defined_names_builtins_and_magics():
    cells = _cells("%matplotlib inline\nimport pandas as pd\nfrom math import pi",
                   "def g(v):\n    return len(v) * pi\nclass C:\n    k = 1",
                   "for i, v in enumerate([1]):\n    pass\nwith open(__file__) as fh:\n    pass",
                   "print(pd, g([1]), C.k, i, v, fh)")
    assert execute.undefined_names(cells) == []


def test_prime_reuses_a_run_only_while_the_code_is_unchanged(tmp_path, monkeypatch):
    book = tmp_path / "book"
    book.mkdir()
    chapter = book / "01-demo.md"
    header = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
              "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n# Demo\n\n")
    chapter.write_text(header + "```{code-cell} python3\nprint(6 * 7)\n```\n")
    monkeypatch.setattr(execute, "chapters", lambda: [chapter])
    notebook, _ = execute.execute_chapter(chapter)
    assert notebook.cells[-1].outputs[0]["text"].strip() == "42"
    executed, cache = tmp_path / "executed", tmp_path / "cache"
    execute.save(notebook, chapter, executed)
    assert execute.prime(executed, cache) == ["01-demo"]
    chapter.write_text(header + "```{code-cell} python3\nprint(6 * 8)\n```\n")
    assert execute.prime(executed, cache) == []


def test_a_failing_cell_is_named(tmp_path):
    chapter = tmp_path / "02-fail.md"
    chapter.write_text("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
                       "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
                       "# Fail\n\n```{code-cell} python3\nassert 1 == 2, 'drifted'\n```\n")
    with pytest.raises(execute.ChapterError, match="drifted"):
        execute.execute_chapter(chapter)
