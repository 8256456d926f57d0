"""Self-checks (mlmcourse.checks) and the answer key built by tools/answers.py."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlmcourse import checks

ROOT = Path(__file__).resolve().parents[1]
SPECS = {
    "demo-ex1": {"kind": "number", "value": 0.169, "atol": 0.005, "hint": "use the variance components"},
    "demo-ex2": {"kind": "numbers", "values": [1.5, -2.0], "rtol": 0.01, "hint": "one per school type"},
    "demo-ex3": {"kind": "choice", "options": ["within", "between", "both"],
                 "digest": checks._digest("demo-ex3", "between"), "hint": "think of the group means"},
}


@pytest.fixture
def demo_key(monkeypatch):
    monkeypatch.setattr(checks, "_key", lambda: SPECS)
    checks.clear_results()
    yield
    checks.clear_results()


def test_a_number_within_tolerance_is_correct(demo_key):
    assert checks.check("demo-ex1", 0.17, quiet=True).correct
    assert checks.check("demo-ex1", np.float64(0.1691), quiet=True).correct


def test_a_wrong_number_gets_a_hint_without_the_answer(demo_key):
    result = checks.check("demo-ex1", 0.25, quiet=True)
    assert not result.correct
    assert "not yet" in result.message and "0.169" not in result.message and "0.17" not in result.message


def test_sign_and_scale_slips_are_named(demo_key):
    assert "sign" in checks.check("demo-ex1", -0.169, quiet=True).message
    assert "percentage" in checks.check("demo-ex1", 16.9, quiet=True).message


def test_several_numbers_say_which_are_off(demo_key):
    assert checks.check("demo-ex2", [1.5, -2.0], quiet=True).correct
    result = checks.check("demo-ex2", [1.5, 2.0], quiet=True)
    assert not result.correct and "number(s) 2 of 2" in result.message
    assert "2 numbers" in checks.check("demo-ex2", [1.5], quiet=True).message


def test_a_choice_is_compared_by_its_hash(demo_key):
    assert checks.check("demo-ex3", "  Between ", quiet=True).correct
    assert not checks.check("demo-ex3", "within", quiet=True).correct
    assert "answer with one of" in checks.check("demo-ex3", "maybe", quiet=True).message


def test_non_numbers_and_unknown_exercises_are_refused_clearly(demo_key):
    assert "one number" in checks.check("demo-ex1", "abc", quiet=True).message
    assert "one number" in checks.check("demo-ex1", True, quiet=True).message
    with pytest.raises(KeyError, match="demo-ex9"):
        checks.check("demo-ex9", 1)


def test_results_remember_every_check_in_order(demo_key):
    checks.check("demo-ex1", 0.3, quiet=True)
    checks.check("demo-ex1", 0.169, quiet=True)
    assert [(r.exercise, r.correct) for r in checks.results()] == [("demo-ex1", False), ("demo-ex1", True)]


def test_encoding_round_trips_and_hides_the_answers():
    blob = checks.encode_key({"x-ex1": {"kind": "number", "value": 0.123456, "hint": "a secret hint"}})
    assert checks.decode_key(blob) == {"x-ex1": {"kind": "number", "value": 0.123456, "hint": "a secret hint"}}
    assert b"0.123456" not in blob and b"secret" not in blob and b"x-ex1" not in blob


def test_the_shipped_key_is_built_from_the_answer_sources():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "answers.py"), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_every_checked_exercise_is_an_exercise_of_its_chapter_and_is_checked_there():
    for source in sorted((ROOT / "answers").glob("*.json")):
        chapter = (ROOT / "book" / source.name).with_suffix(".md").read_text(encoding="utf-8")
        for exercise in json.loads(source.read_text()):
            assert re.search(rf":label:\s*{re.escape(exercise)}\s*$", chapter, re.M), f"{exercise} not in {source.stem}"
            assert f'check("{exercise}"' in chapter, f"{source.stem} never runs check({exercise!r}, ...)"


def test_choices_are_not_stored_in_plain_text():
    raw = checks.decode_key((ROOT / "mlmcourse" / "_answers.bin").read_bytes())
    for spec in raw.values():
        assert "answer" not in spec
