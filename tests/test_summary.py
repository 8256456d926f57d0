"""Printed summaries (mlmcourse._summary) and the pieces lmer and glmer share (mlmcourse._mixed)."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlmcourse
from mlmcourse import _mixed, glmm, lmm
from mlmcourse._summary import format_column, format_p


@pytest.fixture(scope="module")
def sleep_ml():
    return lmm.lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"), reml=False)


@pytest.fixture(scope="module")
def herd():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlmcourse.MlmWarning)
        return glmm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", mlmcourse.load("cbpp"))


def test_summary_classes_keep_their_public_homes():
    assert lmm.LmerSummary.__name__ == "LmerSummary" and "LmerSummary" in lmm.__all__
    assert glmm.GlmerSummary.__name__ == "GlmerSummary" and "GlmerSummary" in glmm.__all__


def test_lmer_summary_prints_lme4s_sections_with_the_fits_numbers(sleep_ml):
    text = str(sleep_ml.summary())
    lines = text.splitlines()
    assert lines[0].startswith("Linear mixed model fit by maximum likelihood")
    stats_line = next(line for line in lines if line.split()[:1] == [f"{sleep_ml.aic:.1f}"])
    assert stats_line.split() == [f"{v:.1f}" for v in (sleep_ml.aic, sleep_ml.bic, sleep_ml.loglik,
                                                       sleep_ml.objective)] + [str(sleep_ml.nobs - 2)]
    for section in ("Scaled residuals: ", "Random effects:", "Fixed effects:"):
        assert section in lines
    days = next(line for line in lines if line.startswith("Days "))
    assert days.split()[1] == format_column(sleep_ml.fixef)[1]
    assert "Number of obs: 180, groups:  Subject, 18" in lines
    assert repr(sleep_ml.summary()) == text


def test_glmer_summary_prints_lme4s_sections_with_the_fits_numbers(herd):
    lines = str(herd.summary()).splitlines()
    assert lines[0] == ("Generalized linear mixed model fit by maximum likelihood (Laplace Approximation) "
                        "['glmerMod']")
    assert lines[1] == " Family: binomial  ( logit )"
    stats_line = next(line for line in lines if line.split()[:1] == [f"{herd.aic:.1f}"])
    assert stats_line.split()[-1] == str(herd.df_resid)
    herd_line = next(line for line in lines if line.startswith(" herd"))
    assert herd_line.split()[1:3] == ["(Intercept)", format_column(herd.varcorr["vcov"])[0]]
    assert "Number of obs: 56, groups:  herd, 15" in lines


def test_random_effects_block_shows_correlations(sleep_ml):
    lines = str(sleep_ml.summary()).splitlines()
    days = next(line for line in lines if line.split()[:1] == ["Days"] and "Residual" not in line)
    corr = sleep_ml.varcorr.dropna(subset=["var2"])["sdcor"].iloc[0]
    assert days.split()[-1] == f"{corr:.2f}"


@pytest.mark.parametrize("p, text", [(0.5, "0.5"), (0.01234, "0.0123"), (3e-7, "3.00e-07"), (1e-30, "< 2e-16"),
                                     (np.nan, "NA")])
def test_p_values_print_as_r_does(p, text):
    assert format_p(p) == text


def test_information_criteria_count_parameters_as_r(sleep_ml, herd):
    # R: AIC(m) = -2 logLik + 2 df; BIC adds log(n) per parameter
    assert sleep_ml.aic == pytest.approx(-2 * sleep_ml.loglik + 2 * 6)
    assert herd.bic == pytest.approx(-2 * herd.loglik + np.log(56) * 5)
    assert _mixed.aic(10.0, 3) == 16.0 and _mixed.bic(10.0, 3, 100) == pytest.approx(10 + 3 * np.log(100))


def test_glmm_does_not_import_private_names_from_lmm():
    source = Path(glmm.__file__).read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "mlmcourse.lmm":
            pytest.fail(f"glmm imports {[a.name for a in node.names]} from lmm")
