"""Self-checks for the exercises: ``check("icc-ex2", answer)`` says "correct" or "not yet".

The expected answers ship inside the package in an encoded file (``_answers.bin``), so a student
cannot read them off the notebook or the package's text; the check compares the student's answer
with the expected one using a tolerance that suits the quantity and, when the answer is not yet
right, gives a hint that points at the method, never at the number.

Every check made in a Python session is remembered (:func:`results`), which is how the grading
command (``mlmcourse-grade``) scores a submitted notebook.

Examples
--------
>>> from mlmcourse.checks import check, exercises
>>> "icc-ex1" in exercises()
True
>>> check("icc-ex1", "not a number", quiet=True).correct
False
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import zlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["check", "CheckResult", "exercises", "results", "clear_results", "encode_key", "decode_key"]

_KEY_FILE = "_answers.bin"
_SALT = b"mlmcourse self-check v1"
_LOG: list["CheckResult"] = []


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one answer: ``correct`` and the message shown to the student."""

    exercise: str
    correct: bool
    message: str

    def __repr__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.correct else "#9a6700"
        return f'<p style="color:{colour};font-weight:bold">{self.message}</p>'


# --- the encoded answer key ---------------------------------------------------------------------

def _keystream(length: int) -> bytes:
    out, counter = bytearray(), 0
    while len(out) < length:
        out += hashlib.sha256(_SALT + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:length])


def encode_key(answers: dict) -> bytes:
    """The bytes of ``_answers.bin`` for a dict ``exercise -> specification``."""
    raw = zlib.compress(json.dumps(answers, sort_keys=True).encode("utf-8"), 9)
    mixed = bytes(a ^ b for a, b in zip(raw, _keystream(len(raw))))
    return base64.b85encode(mixed)


def decode_key(blob: bytes) -> dict:
    """Inverse of :func:`encode_key`."""
    mixed = base64.b85decode(blob)
    raw = bytes(a ^ b for a, b in zip(mixed, _keystream(len(mixed))))
    return json.loads(zlib.decompress(raw).decode("utf-8"))


@lru_cache(maxsize=1)
def _key() -> dict:
    return decode_key(resources.files("mlmcourse").joinpath(_KEY_FILE).read_bytes())


def exercises(chapter: str | None = None) -> list[str]:
    """The exercises that have a self-check, optionally only those of one chapter slug ("icc")."""
    names = sorted(_key())
    return [n for n in names if chapter is None or n.rsplit("-ex", 1)[0] == chapter]


def results() -> list[CheckResult]:
    """Every check made in this Python session, in order."""
    return list(_LOG)


def clear_results() -> None:
    _LOG.clear()


# --- comparing answers ----------------------------------------------------------------------------

def _as_number(answer) -> float | None:
    if isinstance(answer, (bool, np.bool_)):
        return None
    if isinstance(answer, (pd.Series, pd.DataFrame, np.ndarray)) and np.size(answer) == 1:
        answer = np.asarray(answer).ravel()[0]
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _close(value: float, expected: float, spec: dict) -> bool:
    return abs(value - expected) <= spec.get("atol", 0.0) + spec.get("rtol", 1e-3) * abs(expected)


def _number_hint(value: float, expected: float, spec: dict) -> str:
    if expected != 0 and value != 0 and np.sign(value) != np.sign(expected) and _close(-value, expected, spec):
        return "the size is right; check the sign"
    for factor, what in ((100, "a proportion, not a percentage"), (0.01, "a percentage, not a proportion")):
        if expected != 0 and _close(value / factor, expected, spec):
            return f"check the scale: the question asks for {what}"
    return spec.get("hint", "recheck the method the exercise asks for")


def _check_number(answer, spec: dict) -> tuple[bool, str]:
    value = _as_number(answer)
    if value is None:
        return False, "the answer should be one number"
    if _close(value, spec["value"], spec):
        return True, ""
    return False, _number_hint(value, spec["value"], spec)


def _check_numbers(answer, spec: dict) -> tuple[bool, str]:
    expected = np.asarray(spec["values"], dtype=float)
    try:
        values = np.asarray(answer, dtype=float).ravel()
    except (TypeError, ValueError):
        return False, f"the answer should be {len(expected)} numbers"
    if values.shape != expected.shape:
        return False, f"the answer should be {len(expected)} numbers, in the order the exercise lists them"
    wrong = [i for i, (v, e) in enumerate(zip(values, expected)) if not _close(v, e, spec)]
    if not wrong:
        return True, ""
    which = ", ".join(str(i + 1) for i in wrong)
    return False, f"number(s) {which} of {len(expected)} are not yet right; {spec.get('hint', 'recheck them')}"


def _normalise(text) -> str:
    return " ".join(str(text).strip().lower().split())


def _digest(exercise: str, text: str) -> str:
    return hashlib.sha256(f"{exercise}|{_normalise(text)}".encode("utf-8")).hexdigest()


def _check_choice(answer, spec: dict, exercise: str) -> tuple[bool, str]:
    options = [_normalise(o) for o in spec["options"]]
    if _normalise(answer) not in options:
        return False, f"answer with one of: {', '.join(spec['options'])}"
    if _digest(exercise, answer) == spec["digest"]:
        return True, ""
    return False, spec.get("hint", "not this one; reread the question")


def check(exercise: str, answer, *, quiet: bool = False) -> CheckResult:
    """Check an answer to a self-checked exercise.

    Parameters
    ----------
    exercise : str
        The exercise's label as printed in the book, e.g. ``"icc-ex2"``.
    answer
        A number, several numbers (list, array, Series) or a choice (a string), as the exercise asks.
    quiet : bool, default False
        Return the verdict without displaying it.

    Returns
    -------
    CheckResult
        ``correct`` (bool) and ``message``; displayed in a notebook.
    """
    recording = os.environ.get("MLMCOURSE_RECORD_ANSWERS")
    if recording:
        return _record(exercise, answer, recording, quiet)
    key = _key()
    if exercise not in key:
        raise KeyError(f"no self-check is called {exercise!r}; the checked exercises are {', '.join(sorted(key))}")
    spec = key[exercise]
    kind = spec["kind"]
    if kind == "number":
        correct, hint = _check_number(answer, spec)
    elif kind == "numbers":
        correct, hint = _check_numbers(answer, spec)
    else:
        correct, hint = _check_choice(answer, spec, exercise)
    message = f"{exercise}: correct" if correct else f"{exercise}: not yet. Hint: {hint}"
    result = CheckResult(exercise, correct, message)
    _LOG.append(result)
    if not quiet:
        try:
            from IPython.display import display
        except ImportError:  # plain Python
            print(message)
        else:
            display(result)
    return result


def _plain(answer):
    if isinstance(answer, str):
        return answer
    values = np.asarray(answer, dtype=float).ravel().tolist()
    return values[0] if np.ndim(answer) == 0 or (np.size(answer) == 1 and not isinstance(answer, list)) else values


def _record(exercise: str, answer, path: str, quiet: bool) -> CheckResult:
    """Answer-key recording (``tools/answers.py record``): the first answer given is the key.

    Later checks of the same exercise in the run are compared with that first answer exactly, so
    a chapter's "a wrong answer is rejected" checks behave as with the real key.
    """
    store = json.loads(open(path, encoding="utf-8").read()) if os.path.exists(path) else {}
    value = _plain(answer)
    if exercise not in store:
        store[exercise] = value
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(store, handle, indent=1, sort_keys=True)
    correct = store[exercise] == value
    result = CheckResult(exercise, correct, f"{exercise}: {'recorded' if correct else 'differs from the record'}")
    _LOG.append(result)
    if not quiet:
        print(result.message)
    return result
