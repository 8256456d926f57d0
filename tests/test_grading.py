"""The grading command grades three made-up submissions: all right, half right, one that errors."""

import csv
from pathlib import Path

import nbformat
import pytest

from mlmcourse import checks, grading


def _notebook(*sources) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    key = checks._key()
    names = checks.exercises("icc")
    assert len(names) >= 2
    right = {n: key[n].get("value", key[n].get("values")) for n in names}
    wrong = {n: (v * 3 + 1 if isinstance(v, float) else [x * 3 + 1 for x in v]) for n, v in right.items()}
    first, *rest = names
    folder = tmp_path_factory.mktemp("submissions")
    head = "from mlmcourse.checks import check"
    nbformat.write(_notebook(head, *[f"check({n!r}, {right[n]!r})" for n in names]), folder / "ada.ipynb")
    nbformat.write(_notebook(head, f"check({first!r}, {right[first]!r})",
                             *[f"check({n!r}, {wrong[n]!r})" for n in rest]), folder / "ben.ipynb")
    (folder / "cy").mkdir()
    nbformat.write(_notebook(head, "undefined_name + 1", f"check({first!r}, {right[first]!r})"),
                   folder / "cy" / "03-icc.ipynb")
    (folder / "dee.ipynb").write_text("{ not a notebook")
    out = tmp_path_factory.mktemp("grades") / "grades.csv"
    assert grading.main([str(folder), "--out", str(out), "--timeout", "120"]) == 0
    with out.open() as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return rows, names, out


def test_all_right_scores_every_exercise(graded):
    rows, names, _ = graded
    assert int(rows["ada"]["score"]) == len(names) == int(rows["ada"]["max_score"])
    assert all(rows["ada"][n] == "1" for n in names)


def test_half_right_scores_only_the_right_one(graded):
    rows, names, _ = graded
    assert rows["ben"][names[0]] == "1" and int(rows["ben"]["score"]) == 1


def test_a_notebook_that_errors_is_still_graded_and_its_error_reported(graded):
    rows, names, out = graded
    assert rows["cy"][names[0]] == "1" and rows["cy"]["errors"] == "1"
    report = (out.parent / "grades-reports" / "cy.md").read_text()
    assert "NameError" in report and "not checked" in report


def test_an_unreadable_file_gets_a_row_and_a_note(graded):
    rows, _, _ = graded
    assert rows["dee"]["score"] == "0" and "not a readable notebook" in rows["dee"]["note"]


def test_an_empty_folder_is_refused(tmp_path, capsys):
    assert grading.main([str(tmp_path)]) == 2
    assert "no notebooks" in capsys.readouterr().err
