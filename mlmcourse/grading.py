"""Grade a folder of submitted student notebooks: ``mlmcourse-grade SUBMISSIONS``.

Each notebook is executed in a fresh kernel (a time limit per cell; a cell that fails does not stop
the rest), then the self-checks it ran (:func:`mlmcourse.checks.check`) are collected. An exercise
scores 1 when the last check the notebook made of it was correct. The command writes a CSV with
one row per submission and one column per self-checked exercise of the chapter, and a short
report per student listing each exercise and every error the notebook raised.

Submissions are ``SUBMISSIONS/<student>.ipynb`` or ``SUBMISSIONS/<student>/<anything>.ipynb``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlmcourse.checks import exercises

__all__ = ["grade_notebook", "grade_folder", "Submission", "main"]

_MARK = "MLMCOURSE-CHECKS:"
_COLLECT = ("import json as _json, mlmcourse.checks as _checks\n"
            f"print({_MARK!r} + _json.dumps([[r.exercise, bool(r.correct)] for r in _checks.results()]))")
_CALL = re.compile(r"""check\(\s*["']([\w.-]+-ex\d+)["']""")


@dataclass
class Submission:
    """What grading one notebook found."""

    student: str
    path: Path
    checks: dict = field(default_factory=dict)  # exercise -> correct (last check made)
    errors: list = field(default_factory=list)  # "cell N: Name: message"
    failed: str = ""  # why the notebook could not be graded at all


def _student(path: Path, root: Path) -> str:
    relative = path.relative_to(root)
    return relative.parts[0] if len(relative.parts) > 1 else path.stem


def _collected(cell) -> dict:
    for output in cell.get("outputs", []):
        text = output.get("text", "")
        for line in text.splitlines():
            if line.startswith(_MARK):
                return {exercise: correct for exercise, correct in json.loads(line[len(_MARK):])}
    return {}


def _errors(notebook) -> list[str]:
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return found


def grade_notebook(path: Path, student: str, timeout: int = 300) -> Submission:
    """Execute one submission and collect its self-checks (never raises for a student's fault)."""
    import nbformat
    from nbclient import NotebookClient

    result = Submission(student, path)
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001  (an unreadable file is a grading outcome)
        result.failed = f"not a readable notebook ({type(error).__name__}: {error})"
        return result
    notebook.cells.append(nbformat.v4.new_code_cell(_COLLECT))
    with tempfile.TemporaryDirectory() as folder:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": folder}})
        try:
            client.execute()
        except Exception as error:  # noqa: BLE001  (a timeout or a dead kernel)
            result.failed = f"execution stopped ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    result.checks = _collected(notebook.cells[-1])
    result.errors = _errors(notebook)[:20]
    return result


def _chapter_of(paths: list[Path]) -> str | None:
    """The chapter slug named by the check() calls in the notebooks ("icc" for "icc-ex2")."""
    import nbformat

    for path in paths:
        try:
            cells = nbformat.read(path, as_version=4).cells
        except Exception:  # noqa: BLE001
            continue
        for cell in cells:
            match = _CALL.search(cell.source.replace("`", ""))
            if match:
                return match.group(1).rsplit("-ex", 1)[0]
    return None


def _report(sub: Submission, names: list[str]) -> str:
    lines = [f"# {sub.student}", "", f"Notebook: {sub.path.name}", ""]
    if sub.failed:
        lines += [f"Could not be graded completely: {sub.failed}", ""]
    score = sum(bool(sub.checks.get(n)) for n in names)
    lines += [f"Score: {score} of {len(names)}", ""]
    for name in names:
        status = {True: "correct", False: "not yet correct"}.get(sub.checks.get(name), "not checked")
        lines.append(f"- {name}: {status}")
    if sub.errors:
        lines += ["", "Errors raised while running the notebook:"] + [f"- {e}" for e in sub.errors]
    return "\n".join(lines) + "\n"


def grade_folder(folder: Path, out: Path, chapter: str | None = None, timeout: int = 300) -> pd.DataFrame:
    """Grade every notebook below ``folder``; write ``out`` (CSV) and ``out``'s sibling reports/.

    Returns
    -------
    pandas.DataFrame
        Columns ``student``, one per exercise (1 or 0), ``score``, ``max_score``, ``errors``, ``note``.
    """
    folder, out = Path(folder), Path(out)
    paths = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        raise FileNotFoundError(f"no notebooks (*.ipynb) found in {folder}")
    chapter = chapter or _chapter_of(paths)
    names = exercises(chapter) if chapter else []
    if not names:
        raise ValueError(f"cannot tell which chapter {folder} holds (no check(...) call found); pass --chapter")
    reports = out.parent / f"{out.stem}-reports"
    reports.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        sub = grade_notebook(path, _student(path, folder), timeout)
        (reports / f"{sub.student}.md").write_text(_report(sub, names), encoding="utf-8")
        row = {"student": sub.student, **{n: int(bool(sub.checks.get(n))) for n in names}}
        row.update(score=sum(row[n] for n in names), max_score=len(names), errors=len(sub.errors), note=sub.failed)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["student", *names, "score", "max_score", "errors", "note"])
    table.to_csv(out, index=False)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlmcourse-grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder of submitted notebooks")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV to write (default grades.csv)")
    parser.add_argument("--chapter", default=None, help="chapter slug, e.g. icc (default: from the notebooks)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell (default 300)")
    args = parser.parse_args(argv)
    try:
        table = grade_folder(args.submissions, args.out, args.chapter, args.timeout)
    except (FileNotFoundError, ValueError) as error:
        print(f"mlmcourse-grade: {error}", file=sys.stderr)
        return 2
    print(table[["student", "score", "max_score", "errors"]].to_string(index=False))
    print(f"\nwrote {args.out} and {args.out.parent / (args.out.stem + '-reports')}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
