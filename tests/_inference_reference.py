"""Shared loading of tests/reference/inference.json (written by make_reference_inference.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mlmcourse
from mlmcourse.lmm import LmerWarning, lmer

REFERENCE = Path(__file__).parent / "reference" / "inference.json"
SPEC = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {"models": {}}
MODELS = SPEC["models"]
DERIVED = {"cses": ("SES", "MEANSES"), "cses_s": ("SES", "meanses_s")}
_DATA: dict[str, pd.DataFrame] = {}
_FITS: dict[str, object] = {}


def data(name: str) -> pd.DataFrame:
    """A course data set with the derived columns the R script adds (hsb: cses, meanses_s, cses_s)."""
    if name not in _DATA:
        frame = mlmcourse.load(name)
        if name in ("hsb", "hsb40"):
            frame["cses"] = frame["SES"] - frame["MEANSES"]
            frame["meanses_s"] = frame.groupby("School", observed=True)["SES"].transform("mean")
            frame["cses_s"] = frame["SES"] - frame["meanses_s"]
        _DATA[name] = frame
    return _DATA[name]


def fit(mid: str):
    """The model of record `mid`, fitted once per test run."""
    if mid not in _FITS:
        record = MODELS[mid]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LmerWarning)
            _FITS[mid] = lmer(record["formula"], data(record["data"]), reml=record["reml"])
    return _FITS[mid]


def table(record: dict, key: str) -> pd.DataFrame:
    return pd.DataFrame({k: v for k, v in record[key].items()}).set_index("term")


def models_with(key: str) -> list[str]:
    return [mid for mid, rec in MODELS.items() if key in rec]


def r_call(mid: str) -> str:
    rec = MODELS[mid]
    return f"{mid}: lmer({rec['formula']}, {rec['data']}, REML = {rec['reml']})"


def matrix(record: dict, key: str) -> pd.DataFrame:
    names = record[key]["names"]
    return pd.DataFrame(np.array(record[key]["values"], dtype=float), index=names, columns=names)
