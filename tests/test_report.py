"""Publication tables of several fits (mlmcourse.report.model_table)."""

import re
import warnings

import pytest

import mlmcourse
from mlmcourse import report
from mlmcourse.lmm import LmerWarning, lmer


@pytest.fixture(scope="module")
def fits():
    hs = mlmcourse.load("hsb40")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        return {
            "empty": lmer("MathAch ~ 1 + (1 | School)", hs),
            "SES": lmer("MathAch ~ SES + (1 | School)", hs),
            "slope": lmer("MathAch ~ SES + (1 + SES | School)", hs, reml=False),
        }


def test_cells_hold_the_fits_numbers(fits):
    out = report.model_table(fits, digits=3)
    slope = fits["slope"]
    assert out.table.loc["SES", "slope"] == f"{slope.fixef['SES']:.3f} ({slope.std_error['SES']:.3f})"
    assert out.table.loc["var: SES | School", "slope"] == f"{slope.varcorr['vcov'].iloc[1]:.4f}"
    assert out.table.loc["var: residual", "empty"] == f"{fits['empty'].sigma2:.4f}"
    assert out.table.loc["log-likelihood", "SES"] == f"{fits['SES'].loglik:.1f}".replace("-", "\u2212")
    assert out.table.loc["estimation", "slope"] == "ML" and out.table.loc["estimation", "empty"] == "REML"
    assert out.table.loc["observations", "empty"] == "1,977"


def test_missing_terms_are_empty_and_rows_are_in_sections(fits):
    out = report.model_table(fits)
    assert out.table.loc["SES", "empty"] == "" and out.table.loc["var: SES | School", "SES"] == ""
    assert list(out.table["section"].unique()) == ["fixed", "random", "fit"]
    random_rows = out.table.index[out.table["section"] == "random"]
    assert random_rows[-1] == "var: residual"
    assert out.models == ["empty", "SES", "slope"]


def test_a_list_gets_numbered_columns(fits):
    out = report.model_table(list(fits.values()))
    assert out.models == ["(1)", "(2)", "(3)"]


def test_markdown_is_a_pipe_table_with_one_row_per_table_row(fits):
    out = report.model_table(fits)
    lines = out.to_markdown().splitlines()
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) == len(out.table) + 2
    assert all(line.count("|") - line.count("\\|") == 5 for line in rows)


def test_html_escapes_and_has_a_body_per_section(fits):
    out = report.model_table(fits)
    text = out.to_html()
    assert text.count("<tbody") == 3 and text.count("<tr>") == len(out.table) + 2
    assert "<th>var: (Intercept) | School</th>" in text
    assert out._repr_html_() == text


def test_latex_escapes_special_characters(fits):
    text = report.model_table(fits).to_latex()
    assert text.startswith(r"\begin{tabular}{lrrr}") and r"\bottomrule" in text
    assert "$-$" in text and "\u2212" not in text
    body = re.sub(r"\$\|\$|\$-\$|\\[a-z]+|[{}]", "", text)
    assert "|" not in body and "_" not in body


def test_bad_input_names_the_culprit(fits):
    with pytest.raises(ValueError, match="empty"):
        report.model_table({})
    with pytest.raises(TypeError, match="model 'ols' is a str"):
        report.model_table({"ols": "MathAch ~ SES", **fits})
    with pytest.raises(TypeError, match="dict"):
        report.model_table(fits["empty"])
    with pytest.raises(ValueError, match="digits"):
        report.model_table(fits, digits=-1)
