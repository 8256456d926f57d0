"""The course's data sets: loading, checksums and the data dictionary.

Every data set ships inside the package (folder ``data/`` of the repository,
installed as ``mlmcourse.data``) together with a SHA-256 checksum, so nothing is
downloaded and a damaged file is detected before it is used.
"""

from __future__ import annotations

import csv
import hashlib
import json
from functools import lru_cache
from importlib import resources

import pandas as pd

__all__ = ["load", "datasets", "describe", "verify", "DataCorruptionError"]


class DataCorruptionError(RuntimeError):
    """A shipped data file does not match its recorded SHA-256 checksum."""


def _data_dir():
    return resources.files("mlmcourse.data")


@lru_cache(maxsize=1)
def _registry() -> dict:
    text = (_data_dir() / "datasets.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _checksums() -> dict[str, str]:
    sums = {}
    for line in (_data_dir() / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            sums[name] = digest
    return sums


def _spec(name: str) -> dict:
    registry = _registry()
    key = name.lower() if isinstance(name, str) else name
    if key not in registry:
        choices = ", ".join(sorted(registry))
        raise KeyError(f"unknown data set {name!r}; available data sets: {choices}")
    return registry[key]


def verify(name: str) -> None:
    """Check the SHA-256 checksum of every file behind data set `name`.

    Raises
    ------
    DataCorruptionError
        When a file is missing or its content differs from the recorded checksum.
    """
    for filename in _spec(name)["files"]:
        path = _data_dir() / filename
        if not path.is_file():
            raise DataCorruptionError(f"data file {filename!r} of data set {name!r} is missing")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        expected = _checksums().get(filename)
        if digest != expected:
            raise DataCorruptionError(
                f"data file {filename!r} of data set {name!r} is corrupt: its SHA-256 is "
                f"{digest[:12]}..., expected {str(expected)[:12]}... (reinstall mlmcourse)"
            )


def _read_csv(filename: str, ids: list[str]) -> pd.DataFrame:
    """Read an R-exported CSV: quoted fields are text, unquoted fields are numbers.

    A file that is missing or cannot be parsed raises DataCorruptionError naming it.
    """
    try:
        with (_data_dir() / filename).open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, quoting=csv.QUOTE_NONNUMERIC)
            header = next(reader)
            rows = list(reader)
        for line, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise ValueError(f"line {line} has {len(row)} fields, the header {len(header)}")
        frame = pd.DataFrame(rows, columns=[str(c).replace(".", "_") for c in header])
        return _typed_columns(frame, ids)
    except (OSError, StopIteration, csv.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        problem = "is empty" if isinstance(exc, StopIteration) else f"cannot be read ({type(exc).__name__}: {exc})"
        raise DataCorruptionError(f"data file {filename!r} {problem}; reinstall mlmcourse") from None


def _typed_columns(frame: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    """Identifier columns as strings, all-text columns as sorted categoricals, the rest as numbers."""
    for column in frame.columns:
        values = frame[column]
        if column in ids:
            frame[column] = values.map(lambda v: str(int(v)) if isinstance(v, float) else v)
            frame[column] = frame[column].astype("string")
        elif values.map(lambda v: isinstance(v, str)).all():
            frame[column] = pd.Categorical(values, categories=sorted(values.unique()))
        else:
            numbers = pd.to_numeric(values)
            if (numbers == numbers.round()).all():
                numbers = numbers.astype("int64")
            frame[column] = numbers
    return frame


def load(name: str, *, verify_checksum: bool = True) -> pd.DataFrame:
    """Load one of the course's data sets as a tidy DataFrame.

    Parameters
    ----------
    name : str
        One of the names listed by :func:`datasets` (``"hsb"``, ``"hsb40"``,
        ``"exam"``, ``"bdf"``, ``"scotssec"``, ``"sleepstudy"``, ``"oxboys"``).
    verify_checksum : bool, default True
        Check the file's SHA-256 checksum first.

    Returns
    -------
    pandas.DataFrame
        One row per level-1 unit. Identifier columns are strings, factors are
        categoricals whose first category is the reference level (alphabetical,
        as in R), numeric columns are int64 or float64. Column names are those
        of the R packages, with dots replaced by underscores.

    Notes
    -----
    ``"hsb"`` merges the student file with the school file (Size, Sector,
    PRACAD, DISCLIM, HIMINTY); MEANSES is the published school mean SES.
    ``"hsb40"`` restricts it to a fixed subset of 40 schools (1,977
    students), the data of the book's pooling chapter.

    Examples
    --------
    >>> hs = load("hsb40")
    >>> hs.shape, hs["School"].nunique()
    ((1977, 11), 40)
    """
    spec = _spec(name)
    if verify_checksum:
        verify(name)
    ids = spec["ids"]
    frames = [_read_csv(filename, ids) for filename in spec["files"]]
    data = frames[0]
    if len(frames) == 2:  # hsb: students merged with their school's variables
        schools = frames[1].drop(columns=["MEANSES"])
        data = data.merge(schools, on="School", how="left", validate="many_to_one")
    if "subset" in spec:
        keep = data[spec["group"]].isin(spec["subset"])
        data = data.loc[keep].reset_index(drop=True)
    data.attrs["name"] = name
    return data


def datasets() -> pd.DataFrame:
    """List the data sets that ship with the course.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``title``, ``group`` (the grouping column or columns)
        and ``files``.
    """
    rows = [
        {
            "name": name,
            "title": spec["title"],
            "group": spec["group"] if isinstance(spec["group"], str) else " x ".join(spec["group"]),
            "files": ", ".join(spec["files"]),
        }
        for name, spec in _registry().items()
    ]
    return pd.DataFrame(rows, columns=["name", "title", "group", "files"])


def describe(name: str) -> pd.DataFrame:
    """The data dictionary of one data set.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable``, ``description``, ``unit`` and ``varies_at``: the
        level of the hierarchy the variable varies at (1 for variables that can
        vary within a group, 2 for group-level variables, 3 for the top level of
        a three-level data set), as in ``groups.variable_levels``.
    """
    variables = _spec(name)["variables"]
    if isinstance(variables, str):  # shares another data set's dictionary
        variables = _spec(variables)["variables"]
    rows = [
        {"variable": var, "description": desc, "unit": unit, "varies_at": int(level)}
        for var, (desc, unit, level) in variables.items()
    ]
    return pd.DataFrame(rows, columns=["variable", "description", "unit", "varies_at"])
