"""Turn the book's MyST chapter sources into notebooks.

Two products come from one chapter file ``book/NN-slug.md``:

* a *plain* notebook, the chapter exactly as the book executes it (used by the
  test suite, which runs it under nbval), and
* a *student* notebook, committed in ``notebooks/``: solutions and hidden
  book-only cells removed, outputs cleared, MyST-only markup turned into plain
  Markdown, and a first cell that checks the environment.

Usage::

    python tools/coursenb.py student [--check]   # write (or compare) notebooks/NN-slug.ipynb
    python tools/coursenb.py plain --out DIR     # write DIR/NN-slug.ipynb for nbval
    python tools/coursenb.py solutions --out DIR # the student notebook with its solutions kept
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
STUDENT_DIR = ROOT / "notebooks"
CHAPTER_GLOB = "[0-9][0-9]-*.md"
REMOVE_TAGS = {"remove-cell"}

ENV_CHECK = '''\
# Run this cell first: it checks that the course package and its data are available.
COURSE_VERSION = "{version}"
try:
    import mlmcourse
    mlmcourse.load("hsb40")
    print(f"mlmcourse {{mlmcourse.__version__}} and its data are ready.")
    if mlmcourse.__version__ != COURSE_VERSION:
        print(f"Note: this notebook belongs to course version {{COURSE_VERSION}}; "
              "install that version of mlmcourse to get the same numbers.")
except ImportError:
    print("The course package mlmcourse is not installed in this Python.\\n"
          {install}
          "then restart the kernel. In a clone of the course repository, run\\n"
          "    pip install -e .\\n"
          "in a terminal instead.")'''

INSTALL_FROM_WHEEL = ('"Ask your teacher for the file mlmcourse-{version}-py3-none-any.whl, upload it next to this\\n"'
                      '\n          "notebook (on Colab: the Files panel) and run in a new cell:\\n"'
                      '\n          "    %pip install mlmcourse-{version}-py3-none-any.whl\\n"')
INSTALL_FROM_REPOSITORY = ('"In a new cell (also on Colab or Binder), run:\\n"'
                           '\n          "    %pip install git+{repository}\\n"')


def course_config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8")) or {}


def repository_url() -> str:
    """The course repository's address from ``_config.yml`` (empty while it is not published)."""
    return str(((course_config().get("repository") or {}).get("url")) or "").strip()


def course_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def environment_check(repository: str | None = None, version: str | None = None) -> str:
    """The first cell of every student notebook: the install line follows ``repository.url``."""
    repository = repository_url() if repository is None else repository
    version = version or course_version()
    install = (INSTALL_FROM_REPOSITORY.format(repository=repository) if repository
               else INSTALL_FROM_WHEEL.format(version=version))
    return ENV_CHECK.format(version=version, install=install)


def chapters() -> list[Path]:
    """The numbered chapter sources, in order."""
    return sorted(BOOK.glob(CHAPTER_GLOB))


def read_chapter(path: Path) -> nbformat.NotebookNode:
    notebook = jupytext.read(path)
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def stable_ids(notebook: nbformat.NotebookNode, stem: str) -> None:
    """Give every cell an id made from its place and text: unique, and the same on every build."""
    for index, cell in enumerate(notebook.cells):
        digest = hashlib.sha1(f"{stem}:{index}:{cell.source}".encode()).hexdigest()[:8]
        cell["id"] = f"c{index:03d}-{digest}"


def _split_at_directive(source: str, name: str) -> tuple[str, str]:
    """Text before a ``{name}`` directive and text after its closing fence."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if "{" + name + "}" in line)
    fence = re.match(r"^(`{3,}|:{3,})", lines[start].strip())
    closing = fence.group(1) if fence else "```"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == closing), start)
    return "\n".join(lines[:start]).strip(), "\n".join(lines[end + 1:]).strip()


def drop_solutions(cells: list) -> list:
    """Remove everything from a ``solution-start`` directive to its ``solution-end``.

    Text before the start directive and after the end directive stays, so an
    exercise that follows a solution in the same Markdown cell is kept.
    """
    kept, inside = [], False
    for cell in cells:
        is_markdown = cell.cell_type == "markdown"
        if is_markdown and not inside and "{solution-start}" in cell.source:
            before, after = _split_at_directive(cell.source, "solution-start")
            if "{solution-end}" in after:
                raise ValueError("put the solution's content between solution-start and solution-end")
            if before:
                kept.append(nbformat.v4.new_markdown_cell(before, metadata=dict(cell.metadata)))
            inside = True
            continue
        if inside:
            if is_markdown and "{solution-end}" in cell.source:
                inside = False
                _, after = _split_at_directive(cell.source, "solution-end")
                if after:
                    kept.append(nbformat.v4.new_markdown_cell(after, metadata=dict(cell.metadata)))
            continue
        kept.append(cell)
    if inside:
        raise ValueError("a solution-start directive has no matching solution-end")
    return kept


_ROLE = re.compile(r"\{(?P<role>ref|numref|doc|eq|term)\}`(?P<text>[^`<]*?)\s*(?:<(?P<target>[^`>]*)>)?`")
_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
_LABEL = re.compile(r"^\s*:label:\s*(?P<label>\S+)\s*$")
_ADMONITIONS = {"note": "Note", "tip": "Tip", "warning": "Warning", "important": "Important",
                "caution": "Caution", "seealso": "See also", "hint": "Hint"}


def references(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """What a cross-reference to each label of the chapter reads as outside the book.

    Labelled equations are numbered (1), (2), ... in the order of the page, as the book numbers
    them; exercises read "Exercise k" (the numbering ``plain_markdown`` gives them); a named figure
    reads "the figure below", since notebooks and slides do not number figures.
    """
    names, equations, exercises = {}, 0, 0
    for cell in notebook.cells:
        if cell.cell_type == "code":
            figure = (cell.metadata.get("mystnb") or {}).get("figure") or {}
            if figure.get("name"):
                names[str(figure["name"])] = "the figure below"
            continue
        directive = None
        for line in cell.source.splitlines():
            fence = _FENCE.match(line)
            if fence:
                directive = fence.group("name")
                if directive == "exercise":
                    exercises += 1
                continue
            label = _LABEL.match(line)
            if label and directive == "math":
                equations += 1
                names[label.group("label")] = f"({equations})"
            elif label and directive == "exercise":
                names[label.group("label")] = f"Exercise {exercises}"
            if line.strip() and not line.lstrip().startswith(":"):
                directive = None
    return names


def _role_text(match: re.Match, names: dict[str, str]) -> str:
    text, target = match.group("text").strip(), match.group("target")
    if target:
        return text or target
    return names.get(text, text)


def plain_markdown(source: str, counter: list[int], names: dict[str, str] | None = None) -> str:
    """Translate MyST-only markup into Markdown that Jupyter renders.

    ``counter`` numbers the exercises across the cells of a chapter; ``names`` (from
    ``references``) turns cross-references into text and numbers the labelled equations.
    """
    names = names or {}
    out, stack = [], []
    for line in source.splitlines():
        if re.match(r"^\(\s*[\w:-]+\s*\)=\s*$", line):
            continue  # a label target
        if stack and line.strip() == stack[-1][0]:
            _, kind, label = stack.pop()
            if kind == "math" and label in names:
                out.append(f"\\tag{{{names[label].strip('()')}}}")
            out.append("$$" if kind == "math" else ("" if kind != "code" else "```"))
            continue
        match = _FENCE.match(line)
        if match:
            name, arg = match.group("name"), match.group("arg").strip()
            kind = "math" if name == "math" else "code" if name in ("code-block", "code") else "block"
            stack.append([match.group("fence"), kind, None])
            if name == "math":
                out.append("$$")
            elif name in ("code-block", "code"):
                out.append(f"```{arg}")
            elif name == "exercise":
                counter[0] += 1
                out.append(f"**Exercise {counter[0]}.** {arg}".rstrip())
            elif name == "admonition":
                out.append(f"**{arg}**")
            elif name in _ADMONITIONS:
                out.append(f"**{_ADMONITIONS[name]}.** {arg}".rstrip())
            elif arg:
                out.append(f"**{arg}**")
            continue
        if stack and re.match(r"^:[\w-]+:", line.strip()):
            label = _LABEL.match(line)
            if label:
                stack[-1][2] = label.group("label")
            continue  # a directive option such as :label: or :class:
        out.append(_ROLE.sub(lambda m: _role_text(m, names), line))
    return "\n".join(out).strip() + "\n"


def open_solutions(cells: list) -> list:
    """Keep every solution's cells; drop only the ``solution-start``/``solution-end`` markers."""
    kept = []
    for cell in cells:
        if cell.cell_type == "markdown":
            for name in ("solution-start", "solution-end"):
                while "{" + name + "}" in cell.source:
                    before, after = _split_at_directive(cell.source, name)
                    cell.source = "\n\n".join(part for part in (before, after) if part)
        kept.append(cell)
    return kept


def student_notebook(path: Path, *, solutions: bool = False) -> nbformat.NotebookNode:
    """The student version of one chapter (with ``solutions=True``, its solutions filled in).

    The solutions version is what a student has after pasting each solution under its exercise:
    it shows that every solution runs without the book's removed cells.
    """
    notebook = read_chapter(path)
    cells = [c for c in notebook.cells if not REMOVE_TAGS & set(c.metadata.get("tags", []))]
    cells = open_solutions(cells) if solutions else drop_solutions(cells)
    counter, names = [0], references(notebook)
    for cell in cells:
        if cell.cell_type == "markdown":
            cell.source = plain_markdown(cell.source, counter, names).rstrip("\n")
        else:
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("editable", None)
    check = nbformat.v4.new_code_cell(environment_check())
    check.metadata["tags"] = ["environment-check"]
    notebook.cells = [check] + [c for c in cells if c.source.strip()]
    stable_ids(notebook, path.stem)
    return notebook


def plain_notebook(path: Path) -> nbformat.NotebookNode:
    notebook = read_chapter(path)
    stable_ids(notebook, path.stem)
    return notebook


def dumps(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook, version=4) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["student", "plain", "solutions"])
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--check", action="store_true", help="only report notebooks that differ")
    args = parser.parse_args(argv)
    make = {"student": student_notebook, "plain": plain_notebook,
            "solutions": lambda chapter: student_notebook(chapter, solutions=True)}[args.mode]
    default_dir = {"student": STUDENT_DIR, "plain": ROOT / "_build" / "nbval",
                   "solutions": ROOT / "_build" / "solutions"}[args.mode]
    out_dir = args.out or default_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = []
    for chapter in chapters():
        target = out_dir / f"{chapter.stem}.ipynb"
        text = dumps(make(chapter))
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
        else:
            target.write_text(text)
    for name in stale:
        print(f"out of date: {name} (run `make notebooks`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
