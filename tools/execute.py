"""Execute each chapter once and let every product use that one run.

The test suite executes each chapter (``tests/test_chapters.py``) and saves the executed notebook
in ``_build/executed/``. ``make book`` then calls ``python tools/execute.py prime``, which puts
those notebooks into the book's execution cache (``_build/.jupyter_cache``), so Jupyter Book and
``make slides`` reuse the outputs instead of running the chapters again. A saved notebook is used
only while its code is the chapter's current code: the cache matches notebooks by a hash of their
code cells, so an edited chapter is simply executed again by the book.

The student notebooks are not executed a second time. They are the chapter minus cells, so what
can break in them is a name that only a removed cell defines; ``undefined_names`` finds those
statically (``tests/test_chapters.py`` runs it on every student notebook, with and without the
solutions).

Usage::

    python tools/execute.py run [CHAPTER ...]   # execute chapters, save to _build/executed/
    python tools/execute.py prime               # load _build/executed/ into the book's cache
"""

from __future__ import annotations

import argparse
import builtins
import re
import symtable
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from coursenb import BOOK, chapters, read_chapter  # noqa: E402

EXECUTED_DIR = ROOT / "_build" / "executed"
CACHE_DIR = ROOT / "_build" / ".jupyter_cache"
TIMEOUT = 300  # seconds per cell, as the book's execute.timeout


class ChapterError(RuntimeError):
    """A chapter cell raised: names the chapter, the cell and the error."""


def _failing_cell(notebook: nbformat.NotebookNode) -> tuple[int, str, str]:
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, cell.source, f"{output.get('ename')}: {output.get('evalue')}"
    return -1, "", ""


def execute_chapter(path: Path, timeout: int = TIMEOUT) -> tuple[nbformat.NotebookNode, float]:
    """Run one chapter as the book does (kernel python3, working folder ``book/``).

    Returns the executed notebook and the seconds it took; raises ChapterError naming the first
    cell that failed.
    """
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = read_chapter(path)
    result = single_nb_execution(notebook, cwd=str(BOOK), timeout=timeout, allow_errors=False,
                                 meta_override=True)
    if result.err is not None:
        index, source, error = _failing_cell(notebook)
        where = f"cell {index}:\n{source}\n" if index >= 0 else ""
        raise ChapterError(f"{path.name} failed in {where}{error or result.err!r}\n{result.exc_string or ''}")
    return notebook, result.time


def save(notebook: nbformat.NotebookNode, path: Path, out_dir: Path = EXECUTED_DIR) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{path.stem}.ipynb"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(nbformat.writes(notebook), encoding="utf-8")
    tmp.replace(target)
    return target


def prime(executed_dir: Path = EXECUTED_DIR, cache_dir: Path = CACHE_DIR) -> list[str]:
    """Put each saved run whose code is still the chapter's into the book's cache.

    Returns the names of the chapters primed.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_dir))
    primed = []
    for chapter in chapters():
        saved = executed_dir / f"{chapter.stem}.ipynb"
        if not saved.exists():
            continue
        executed = nbformat.read(saved, as_version=4)
        _, current = cache.create_hashed_notebook(read_chapter(chapter))
        _, ran = cache.create_hashed_notebook(executed)
        if current != ran:
            continue  # the chapter changed since it was run: the book executes it again
        try:
            cache.match_cache_notebook(read_chapter(chapter))
            primed.append(chapter.stem)
            continue  # already cached
        except KeyError:
            pass
        cache.cache_notebook_bundle(CacheBundleIn(executed, str(chapter)), check_validity=False, overwrite=True)
        primed.append(chapter.stem)
    return primed


# --- names a student notebook uses but no kept cell defines ----------------------------------

_MAGIC = re.compile(r"^\s*[%!]")
_BUILTINS = set(dir(builtins)) | {"display", "get_ipython", "__file__", "In", "Out"}


def _python(source: str) -> str:
    """The cell without IPython magics and shell lines (they bind no Python names here)."""
    return "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())


def _walk(table: symtable.SymbolTable, used: set, bound: set, top: bool) -> None:
    for symbol in table.get_symbols():
        name = symbol.get_name()
        if top:
            if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace():
                bound.add(name)
            if symbol.is_referenced():
                used.add(name)
        elif symbol.is_global() and symbol.is_referenced():
            used.add(name)
        elif top is False and symbol.is_declared_global() and symbol.is_assigned():
            bound.add(name)
    for child in table.get_children():
        _walk(child, used, bound, top=False)


def cell_names(source: str) -> tuple[set[str], set[str]]:
    """(names the cell reads from the notebook's globals, names it defines there)."""
    used: set[str] = set()
    bound: set[str] = set()
    _walk(symtable.symtable(_python(source), "<cell>", "exec"), used, bound, top=True)
    return used, bound


def undefined_names(cells: list) -> list[tuple[int, str]]:
    """(cell index, name) for each name a code cell reads that no earlier or same cell defines.

    A cell that reads a name before defining it in the same cell is not caught; what this finds is
    the common fault of a derived notebook: a name defined only in a cell that was removed.
    """
    defined: set[str] = set()
    missing = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        used, bound = cell_names(cell.source)
        defined |= bound
        missing += [(index, name) for name in sorted(used - defined - _BUILTINS)]
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["run", "prime"])
    parser.add_argument("chapters", nargs="*", help="chapter files (default: all)")
    args = parser.parse_args(argv)
    if args.mode == "prime":
        primed = prime()
        print(f"book cache: {len(primed)} chapter run(s) reused from {EXECUTED_DIR.relative_to(ROOT)}")
        return 0
    for path in [Path(c) for c in args.chapters] or chapters():
        start = time.perf_counter()
        notebook, _ = execute_chapter(path)
        save(notebook, path)
        print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
