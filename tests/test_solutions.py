"""Every exercise's solution runs in the student's notebook.

The student notebook lacks the book's removed cells, so a solution that leans on a variable
defined only in one of them works in the book and fails for the student. Here each chapter's
student notebook is rebuilt with its solutions pasted back under their exercises
(``coursenb.py solutions``) and executed from top to bottom.

Executing every chapter is expensive (about a minute each), so these tests are marked
``solutions`` and run only when asked for::

    pytest tests/test_solutions.py -m solutions -p no:xdist          # every chapter
    pytest tests/test_solutions.py -m solutions -k 03-icc -p no:xdist  # one chapter
    MLMCOURSE_SOLUTIONS=1 pytest tests/test_solutions.py              # same, without -m

The cheap checks at the end (how the solutions notebook is made) always run.
"""

import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import coursenb  # noqa: E402

CHAPTERS = coursenb.chapters()


def _asked_for(config) -> bool:
    return "solutions" in (config.getoption("-m") or "") or os.environ.get("MLMCOURSE_SOLUTIONS") == "1"


@pytest.mark.solutions
@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_solutions_run_in_the_student_notebook(chapter, request, tmp_path):
    if not _asked_for(request.config):
        pytest.skip("expensive: run with -m solutions or MLMCOURSE_SOLUTIONS=1")
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = coursenb.student_notebook(chapter, solutions=True)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{chapter.stem}: a cell of the student notebook with solutions failed:\n{error}")


def _markdown(source):
    return nbformat.v4.new_markdown_cell(source)


def test_solutions_notebook_keeps_solution_cells_and_drops_markers():
    cells = [
        _markdown("```{exercise} Try\n:label: x-ex1\nDo it.\n```"),
        nbformat.v4.new_code_cell("# Your code here"),
        _markdown("```{solution-start} x-ex1\n:class: dropdown\n```"),
        nbformat.v4.new_code_cell("answer = 42"),
        _markdown("Why 42.\n\n```{solution-end}\n```"),
    ]
    kept = coursenb.open_solutions(cells)
    sources = [c.source for c in kept]
    assert "answer = 42" in sources and "Why 42." in sources
    assert not any("solution-start" in s or "solution-end" in s for s in sources)


def test_solutions_notebook_has_every_solution_and_no_hidden_cell():
    chapter = CHAPTERS[0]
    with_solutions = coursenb.student_notebook(chapter, solutions=True)
    student = coursenb.student_notebook(chapter)
    plain = coursenb.plain_notebook(chapter)
    hidden = {c.source for c in plain.cells if "remove-cell" in c.metadata.get("tags", [])}
    code = [c.source for c in with_solutions.cells if c.cell_type == "code"]
    assert len(code) > sum(c.cell_type == "code" for c in student.cells)
    assert not hidden & set(code)


def test_solutions_mode_writes_one_notebook_per_chapter(tmp_path):
    assert coursenb.main(["solutions", "--out", str(tmp_path)]) == 0
    written = sorted(p.stem for p in tmp_path.glob("*.ipynb"))
    assert written == [c.stem for c in CHAPTERS]
    notebook = nbformat.read(tmp_path / f"{CHAPTERS[0].stem}.ipynb", as_version=4)
    assert notebook.cells[0].metadata.get("tags") == ["environment-check"]
