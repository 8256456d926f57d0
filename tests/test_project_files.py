"""Project files that must agree with each other: dependencies and student notebooks."""

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _coursenb():
    spec = importlib.util.spec_from_file_location("coursenb", ROOT / "tools" / "coursenb.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("coursenb", module)
    spec.loader.exec_module(module)
    return module


def _normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_entries = [line.strip()[2:] for line in lines if line.startswith("      - ")]
    listed = [entry for entry in pip_entries if not entry.startswith("-e")]
    assert sorted(map(_normalise, listed)) == sorted(map(_normalise, wanted))


def test_jupyter_book_is_pinned_below_2():
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert "jupyter-book>=1.0.4.post1,<2" in [_normalise(d) for d in dev]


def test_every_chapter_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for chapter in sorted((ROOT / "book").glob("[0-9][0-9]-*.md")):
        assert f"file: book/{chapter.stem}" in toc, f"{chapter.name} is not listed in _toc.yml"


CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]-*.md"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_student_notebook_is_up_to_date(chapter):
    coursenb = _coursenb()
    committed = ROOT / "notebooks" / f"{chapter.stem}.ipynb"
    assert committed.exists(), f"notebooks/{committed.name} is missing: run `make notebooks`"
    fresh = coursenb.dumps(coursenb.student_notebook(chapter))
    assert committed.read_text() == fresh, f"notebooks/{committed.name} is stale: run `make notebooks`"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_student_notebook_has_no_solution_or_hidden_cell(chapter):
    coursenb = _coursenb()
    book = coursenb.read_chapter(chapter)
    student = nbformat.read(ROOT / "notebooks" / f"{chapter.stem}.ipynb", as_version=4)
    student_code = {c.source.strip() for c in student.cells if c.cell_type == "code"}
    hidden, inside = [], False
    for cell in book.cells:
        if cell.cell_type == "markdown" and "{solution-start}" in cell.source:
            inside = True
        elif cell.cell_type == "markdown" and "{solution-end}" in cell.source:
            inside = False
        elif cell.cell_type == "code" and (inside or "remove-cell" in cell.metadata.get("tags", [])):
            hidden.append(cell.source.strip())
    assert hidden, "a chapter needs solutions"
    leaked = [code for code in hidden if code and code in student_code]
    assert not leaked, f"{chapter.stem}: solution or hidden cells leaked into the student notebook"
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    assert "environment-check" in student.cells[0].metadata.get("tags", [])


def test_student_markdown_is_plain():
    coursenb = _coursenb()
    text = "(ch-x)=\n# T\n```{exercise} Title\n:label: x-ex1\n\nDo it, see {ref}`the data <data>`.\n```\n"
    out = coursenb.plain_markdown(text, [0])
    assert out == "# T\n**Exercise 1.** Title\n\nDo it, see the data.\n"


def test_unterminated_solution_is_an_error():
    coursenb = _coursenb()
    cell = nbformat.v4.new_markdown_cell("```{solution-start} x\n```")
    with pytest.raises(ValueError, match="no matching solution-end"):
        coursenb.drop_solutions([cell])


def test_text_after_a_solution_is_kept():
    coursenb = _coursenb()
    cells = [
        nbformat.v4.new_markdown_cell("```{solution-start} x-ex1\n:class: dropdown\n```"),
        nbformat.v4.new_code_cell("answer = 42"),
        nbformat.v4.new_markdown_cell("Why 42.\n\n```{solution-end}\n```\n\n```{exercise} Next\n```"),
    ]
    kept = coursenb.drop_solutions(cells)
    assert [c.source for c in kept] == ["```{exercise} Next\n```"]
