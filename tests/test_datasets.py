"""The shipped data sets: shapes, dtypes, checksums, errors."""

import hashlib
import importlib

import pandas as pd
import pytest

import mlmcourse

ds = importlib.import_module("mlmcourse.datasets")  # the module, not the function of that name

SCS_2017_SCHOOLS = {  # students per school, as the SCS course text prints `table(hs$school)`
    "1317": 48, "1906": 53, "2208": 60, "2458": 57, "2626": 38, "2629": 57, "2639": 42, "2658": 45,
    "2771": 55, "3013": 53, "3610": 64, "3992": 53, "4292": 65, "4511": 58, "4530": 63, "4868": 34,
    "5619": 66, "5640": 57, "5650": 45, "5720": 53, "5761": 52, "5762": 37, "6074": 56, "6484": 35,
    "6897": 49, "7172": 44, "7232": 52, "7342": 58, "7345": 56, "7688": 54, "7697": 32, "7890": 51,
    "7919": 37, "8531": 41, "8627": 53, "8707": 48, "8854": 32, "8874": 36, "9550": 29, "9586": 59,
}


def test_hsb40_has_the_scs_2017_schools_and_sizes():
    hs = mlmcourse.load("hsb40")
    assert hs.shape[0] == 1977
    assert hs.groupby("School").size().to_dict() == SCS_2017_SCHOOLS


def test_hsb40_sector_totals_match_scs_2017():
    # SCS (2017): tab(~ Sector + school, hs) totals Catholic 1144, Public 833
    hs = mlmcourse.load("hsb40")
    assert hs.groupby("Sector", observed=True).size().to_dict() == {"Catholic": 1144, "Public": 833}


def test_hsb_merges_school_variables():
    hsb = mlmcourse.load("hsb")
    assert hsb.shape == (7185, 11)
    assert hsb["School"].nunique() == 160
    assert hsb[["Size", "Sector", "PRACAD", "DISCLIM", "HIMINTY"]].notna().all().all()
    assert list(hsb["Sector"].cat.categories) == ["Catholic", "Public"]


@pytest.mark.parametrize(
    "name, shape, ids",
    [
        ("exam", (4059, 10), ["school", "student"]),
        ("bdf", (2287, 28), ["schoolNR", "pupilNR", "classNR"]),
        ("scotssec", (3435, 6), ["primary", "second"]),
        ("sleepstudy", (180, 3), ["Subject"]),
        ("oxboys", (234, 4), ["Subject"]),
        ("egsingle", (7230, 12), ["schoolid", "childid"]),
    ],
)
def test_shapes_and_string_ids(name, shape, ids):
    data = mlmcourse.load(name)
    assert data.shape == shape
    for column in ids:
        assert pd.api.types.is_string_dtype(data[column]), column


def test_factors_are_categoricals_in_r_order():
    exam = mlmcourse.load("exam")
    assert list(exam["schgend"].cat.categories) == ["boys", "girls", "mixed"]
    assert list(exam["sex"].cat.categories) == ["F", "M"]
    assert pd.api.types.is_float_dtype(exam["normexam"])


def test_dots_in_r_names_become_underscores():
    bdf = mlmcourse.load("bdf")
    assert "IQ_verb" in bdf.columns and "IQ.verb" not in bdf.columns


def test_every_dataset_listed_and_described():
    table = mlmcourse.datasets()
    assert list(table.columns) == ["name", "title", "group", "files"]
    for name in table["name"]:
        data = mlmcourse.load(name)
        dictionary = mlmcourse.describe(name)
        assert list(dictionary.columns) == ["variable", "description", "unit", "varies_at"]
        assert set(dictionary["variable"]) == set(data.columns), name


def test_data_dictionary_levels_agree_with_data():
    from mlmcourse.groups import variable_levels

    hs = mlmcourse.load("hsb")
    observed = variable_levels(hs, "School").set_index("variable")["varies_at"]
    declared = mlmcourse.describe("hsb").set_index("variable")["varies_at"]
    for variable, level in observed.items():
        assert declared[variable] == level, variable


def test_unknown_name_lists_choices():
    with pytest.raises(KeyError, match="unknown data set 'hsb41'.*hsb40"):
        mlmcourse.load("hsb41")


def test_checksums_match_files():
    for name, digest in ds._checksums().items():
        content = (ds._data_dir() / name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == digest


def test_corrupt_file_is_detected(monkeypatch):
    monkeypatch.setattr(ds, "_checksums", lambda: {"sleepstudy.csv": "0" * 64})
    with pytest.raises(ds.DataCorruptionError, match="sleepstudy.csv.*corrupt"):
        mlmcourse.load("sleepstudy")


def test_egsingle_is_three_level():
    # mlmRev::egsingle: 7230 yearly scores, 1721 children, 60 schools, each child in one school
    eg = mlmcourse.load("egsingle")
    assert (eg["childid"].nunique(), eg["schoolid"].nunique()) == (1721, 60)
    assert eg.groupby("childid")["schoolid"].nunique().max() == 1
    levels = mlmcourse.describe("egsingle").set_index("variable")["varies_at"]
    assert levels["lowinc"] == 3 and levels["female"] == 2 and levels["year"] == 1
    assert sorted(eg["year"].unique()) == [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
def _damaged_copy(tmp_path, monkeypatch, text: str):
    ds._registry()  # read the registry from the package before pointing at the damaged copy
    (tmp_path / "sleepstudy.csv").write_text(text, encoding="utf-8")
    monkeypatch.setattr(ds, "_data_dir", lambda: tmp_path)


@pytest.mark.parametrize("text, match", [
    ("", "is empty"),
    ('"Reaction","Days","Subject"\n249.56,0,"308"\n258.7,1\n', "line 3 has 2 fields"),
    ('"Reaction","Days","Subject"\n249.56,zero,"308"\n', "cannot be read"),
])
def test_a_damaged_file_is_named_when_checksums_are_skipped(tmp_path, monkeypatch, text, match):
    _damaged_copy(tmp_path, monkeypatch, text)
    with pytest.raises(ds.DataCorruptionError, match=f"'sleepstudy.csv'.*{match}"):
        mlmcourse.load("sleepstudy", verify_checksum=False)


def test_a_missing_file_is_named(tmp_path, monkeypatch):
    ds._registry()
    monkeypatch.setattr(ds, "_data_dir", lambda: tmp_path)
    with pytest.raises(ds.DataCorruptionError, match="'sleepstudy.csv'"):
        mlmcourse.load("sleepstudy", verify_checksum=False)
    with pytest.raises(ds.DataCorruptionError, match="'sleepstudy.csv'.*missing"):
        mlmcourse.load("sleepstudy")
