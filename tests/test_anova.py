"""Type III F tests against lmerTest's ``anova(m, type = 3)`` (tests/reference/inference.json).

Tolerances: F 1e-3 relative, denominator df 1e-2 relative, p-values 1e-3 absolute.
"""

from __future__ import annotations

import numpy as np
import pytest

import mlmcourse
from _inference_reference import MODELS, REFERENCE, fit, models_with, r_call, table
from mlmcourse.ftests import ANOVA_COLUMNS, anova, type3_contrasts

pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason="tests/reference/inference.json not generated")


def _compare(ours, theirs):
    ours = ours.set_index("term").loc[theirs.index]
    np.testing.assert_array_equal(ours["num_df"], theirs["num_df"])
    np.testing.assert_allclose(ours["statistic"], theirs["statistic"], rtol=1e-3)
    np.testing.assert_allclose(ours["den_df"], theirs["den_df"], rtol=1e-2)
    np.testing.assert_allclose(ours["p_value"], theirs["p_value"], atol=1e-3)


@pytest.mark.parametrize("mid", [pytest.param(m, id=r_call(m)) for m in models_with("anova_satterthwaite")])
def test_type3_satterthwaite_matches_lmertest(mid):
    # lmerTest: anova(m, type = 3)
    _compare(anova(fit(mid)), table(MODELS[mid], "anova_satterthwaite"))


@pytest.mark.parametrize("mid", [pytest.param(m, id=r_call(m)) for m in models_with("anova_kenward_roger")])
def test_type3_kenward_roger_matches_lmertest(mid):
    # lmerTest: anova(m, type = 3, ddf = "Kenward-Roger")
    _compare(anova(fit(mid), ddf="kenward-roger"), table(MODELS[mid], "anova_kenward_roger"))


def test_one_column_term_is_the_squared_t_test():
    m = fit("hs40_nonrandom_slopes")
    t = m.coef_table().set_index("term")
    f = anova(m).set_index("term")
    assert f.loc["SES:Sector", "statistic"] == pytest.approx(t.loc["SES:SectorPublic", "statistic"] ** 2, rel=1e-8)
    assert f.loc["SES:Sector", "den_df"] == pytest.approx(t.loc["SES:SectorPublic", "df"], rel=1e-8)


def test_factor_term_has_one_row_per_contrast():
    L = type3_contrasts(fit("bdf_denomina"))
    assert L["denomina"].shape[0] == 3 and L["IQ_verb:denomina"].shape[0] == 3


def test_columns_and_method():
    table_ = anova(fit("sleep_rs"), ddf="asymptotic")
    assert list(table_.columns) == ANOVA_COLUMNS and (table_["method"] == "Wald (asymptotic)").all()
    assert np.isinf(table_["den_df"]).all()


def test_intercept_only_model_is_refused():
    with pytest.raises(ValueError, match="no fixed-effect term"):
        anova(fit("hs40_null"))


def test_exported_at_package_level():
    assert mlmcourse.anova is anova
