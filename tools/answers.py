"""Build the package's encoded answer key from ``answers/*.json``.

Each file ``answers/NN-slug.json`` holds the self-checked exercises of one chapter::

    {"icc-ex2": {"kind": "number", "value": 0.169, "rtol": 0.01, "hint": "..."},
     "icc-ex4": {"kind": "numbers", "values": [1.2, 3.4], "atol": 0.05, "hint": "..."},
     "fe-ex1":  {"kind": "choice", "options": ["a", "b", "c"], "answer": "b", "hint": "..."}}

The key is written to ``mlmcourse/_answers.bin`` (see ``mlmcourse.checks``): numbers are encoded,
choices are stored only as a salted hash, so neither is readable in the installed package.

The expected values come from the book's own solutions: ``record`` executes a chapter with
``MLMCOURSE_RECORD_ANSWERS`` set, so that each ``check(...)`` in its solutions writes down the answer
the solution computes, and stores those answers in the chapter's source file (kind, tolerance and
hint are written by hand). A chapter's hidden cells then assert that the check accepts the
solution and rejects a wrong answer, so a drift in a solution fails the chapter.

Usage::

    python tools/answers.py                      # write mlmcourse/_answers.bin
    python tools/answers.py --check              # fail if it is out of date
    python tools/answers.py record [NN-slug ...] # re-derive the answers from the solutions
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlmcourse.checks import _digest, decode_key, encode_key  # noqa: E402

SOURCES = ROOT / "answers"
TARGET = ROOT / "mlmcourse" / "_answers.bin"
KINDS = {"number": {"value"}, "numbers": {"values"}, "choice": {"options", "answer"}}


def load_sources(folder: Path = SOURCES) -> dict:
    """All chapters' answers, with choices replaced by their digest; checks each entry's fields."""
    key = {}
    for path in sorted(folder.glob("*.json")):
        for exercise, spec in json.loads(path.read_text(encoding="utf-8")).items():
            kind = spec.get("kind")
            if kind not in KINDS:
                raise ValueError(f"{path.name}: {exercise} has kind {kind!r}; use one of {sorted(KINDS)}")
            missing = KINDS[kind] - set(spec)
            if missing:
                raise ValueError(f"{path.name}: {exercise} lacks {sorted(missing)}")
            if exercise in key:
                raise ValueError(f"{path.name}: {exercise} is defined twice")
            spec = dict(spec)
            if kind == "choice":
                answer = spec.pop("answer")
                if answer not in spec["options"]:
                    raise ValueError(f"{path.name}: {exercise}'s answer {answer!r} is not one of its options")
                spec["digest"] = _digest(exercise, answer)
            key[exercise] = spec
    return key


def record(stems: list[str]) -> None:
    """Run chapters with recording on and write the answers their solutions give into answers/."""
    import os
    import tempfile

    sys.path.insert(0, str(ROOT / "tools"))
    from execute import execute_chapter

    for source in sorted(SOURCES.glob("*.json")):
        if stems and source.stem not in stems:
            continue
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "answers.json"
            os.environ["MLMCOURSE_RECORD_ANSWERS"] = str(path)
            try:
                execute_chapter(ROOT / "book" / f"{source.stem}.md")
            finally:
                del os.environ["MLMCOURSE_RECORD_ANSWERS"]
            given = json.loads(path.read_text()) if path.exists() else {}
        specs = json.loads(source.read_text(encoding="utf-8"))
        for exercise, spec in specs.items():
            if exercise not in given:
                raise ValueError(f"{source.stem}: no solution ran check({exercise!r}, ...)")
            field = {"number": "value", "numbers": "values", "choice": "answer"}[spec["kind"]]
            spec[field] = given[exercise]
        source.write_text(json.dumps(specs, indent=2) + "\n", encoding="utf-8")
        print(f"{source.stem}: {len(specs)} answers recorded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["build", "record"], default="build")
    parser.add_argument("stems", nargs="*", help="with record: chapter stems (default: all)")
    parser.add_argument("--check", action="store_true", help="only report whether the key is current")
    args = parser.parse_args(argv)
    if args.mode == "record":
        record(args.stems)
    key = load_sources()
    if args.check:
        current = TARGET.exists() and decode_key(TARGET.read_bytes()) == key
        if not current:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run `python tools/answers.py`", file=sys.stderr)
        return 0 if current else 1
    TARGET.write_bytes(encode_key(key))
    print(f"{len(key)} self-checked exercises written to {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
