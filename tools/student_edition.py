"""Build the student edition of the book: the same pages without the exercises' solutions.

For courses that grade the exercises. The chapter sources are copied to
``_build/student-edition/src`` with every ``solution-start`` ... ``solution-end`` block removed
(with the cells inside it, hidden checks included), and Jupyter Book builds that copy into
``_build/student-edition/html``. The regular book (``make book``) keeps the solutions in
dropdowns.

Usage: python tools/student_edition.py
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "student-edition"
_BLOCK = re.compile(r"^```\{solution-start\}.*?^```\{solution-end\}\s*\n```[ \t]*\n?", re.S | re.M)


def without_solutions(text: str) -> str:
    """A chapter's MyST source with its solution blocks removed."""
    stripped = _BLOCK.sub("", text)
    if "{solution-start}" in stripped or "{solution-end}" in stripped:
        raise ValueError("a solution-start has no matching solution-end (or the reverse)")
    return stripped


def write_sources(out: Path = OUT / "src") -> Path:
    if out.exists():
        shutil.rmtree(out)
    (out / "book").mkdir(parents=True)
    for name in ("_toc.yml", "references.bib"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, out / name)
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    config = re.sub(r'^title:\s*"(.*)"', r'title: "\1 (student edition)"', config, count=1, flags=re.M)
    (out / "_config.yml").write_text(config, encoding="utf-8")
    shutil.copytree(ROOT / "tools", out / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    for page in (ROOT / "book").iterdir():
        if page.suffix == ".md":
            (out / "book" / page.name).write_text(without_solutions(page.read_text(encoding="utf-8")),
                                                 encoding="utf-8")
        elif page.is_file():
            shutil.copy(page, out / "book" / page.name)
    return out


def main() -> int:
    source = write_sources()
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(source),
               "--path-output", str(OUT), "-W", "-n", "--keep-going"]
    done = subprocess.run(command)
    if done.returncode == 0:
        print(f"student edition: {OUT / '_build' / 'html' / 'index.html'}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
