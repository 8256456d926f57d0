"""Every public function and result speaks one vocabulary (book/api.md, "The result vocabulary").

The test walks the public names of the statistics modules: each function is called on
course data (or listed below as not returning a result, with the reason) and what it
returns is checked against the schema -- coefficient tables, one-row tests, lme4's
anova layout, varcorr and ranef layouts, counts, the wrapped library object, short
reprs, warnings of one family, and return types that do not depend on the arguments.
"""

from __future__ import annotations

import inspect
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import mlmcourse
from mlmcourse import (ddf, estimators, ftests, glmm, groups, inference, lmm, power, profile, report, robust,
                       rsquared, simulate, variance)

COEF = ["term", "estimate", "std_error", "statistic", "df", "p_value", "conf_low", "conf_high"]
COEF_KEYS = {"level", "response", "contrast", "effect"}  # key columns a per-group coefficient table puts in front
TEST = ["method", "statistic", "df", "p_value"]
TEST_KEYS = {"term"}  # key column a table of several tests (one per term) puts in front
F_TEST = [*TEST, "num_df", "den_df"]
LRT = ["model", "npar", "aic", "bic", "loglik", "deviance", "statistic", "df", "p_value", "p_value_boundary"]
VARCORR = ["grp", "var1", "var2", "vcov", "sdcor"]
RANEF = ["grpvar", "term", "grp", "condval", "condsd"]
#: Old dialects that must not come back in any result table.
FORBIDDEN_COLUMNS = {"chisq", "t_value", "z_value", "f_value", "lower", "upper", "bse", "se", "pvalue", "tvalue",
                     "test", "group", "component", "sd", "variable"}
MODULES = [lmm, glmm, estimators, robust, inference, variance, groups, power, report, ddf, ftests, profile, rsquared,
           simulate]
#: Public callables that return no result to check, and why.
NOT_RESULTS = {
    "lme4_term_name": "translates one name (a str)",
    "require_type": "raises or returns None",
}
#: Results that are formatted displays (text cells) rather than numbers, and why their attribute is allowed.
DISPLAYS = {"model_table": "ModelTable.table holds the printed text cells of several fits side by side"}


@cache
def data(name: str) -> pd.DataFrame:
    return mlmcourse.load(name)


@cache
def fit(formula: str = "MathAch ~ SES + (1 | School)", name: str = "hsb40", reml: bool = False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlmcourse.MlmWarning)
        return lmm.lmer(formula, data(name), reml=reml)


@cache
def binary_fit(formula: str = "use ~ urban + (1 | district)"):
    return glmm.glmer(formula, data("contraception"))


def _sleep_pair():
    return (fit("Reaction ~ Days + (1 | Subject)", "sleepstudy"),
            fit("Reaction ~ Days + (Days | Subject)", "sleepstudy"))


def _fe():
    return estimators.fixed_effects("MathAch ~ SES", data("hsb40"), "School")


def _re():
    return estimators.random_effects_gls("MathAch ~ SES", data("hsb40"), "School")


def _sleep_reml():
    return fit("Reaction ~ Days + (Days | Subject)", "sleepstudy", reml=True)


def _interaction():
    return fit("MathAch ~ SES * Sector + (1 | School)", reml=True)


@cache
def _centred():
    hs = data("hsb40").copy()
    hs["ses_w"] = groups.center(hs, "SES", "School")["SES_within"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlmcourse.MlmWarning)
        return lmm.lmer("MathAch ~ ses_w + MEANSES + (1 | School)", hs)


POWER_POINT = {"n_groups": 6, "n_per_group": 4, "icc": 0.2, "n_reps": 4, "seed": 1, "progress": False}


@cache
def _power_replicates(design: str, **options):
    return power.power_replicates(design, **{**POWER_POINT, **options})


def _power_simulation(design: str, **options):
    return power.power_simulation(design, **{**POWER_POINT, **options})


# name -> list of calls (each a zero-argument function); several calls check that the return type and
# the columns do not depend on the arguments.
CALLS = {
    "lmer": [lambda: fit(), lambda: fit(reml=True), lambda: fit("MathAch ~ SES + (SES | School)")],
    "lmer_design": [lambda: lmm.lmer_design("MathAch ~ SES + (1 | School)", data("hsb40"))],
    "coef_frame": [lambda: lmm.coef_frame(pd.Series({"x": 1.0}), pd.Series({"x": 0.5}), np.inf),
                   lambda: lmm.coef_frame(pd.Series({"x": 1.0}), pd.Series({"x": 0.5}), 10, 0.9)],
    "pooled": [lambda: estimators.pooled("MathAch ~ SES", data("hsb40")),
               lambda: estimators.pooled("MathAch ~ SES", data("hsb40"), cluster="School")],
    "no_pooling": [lambda: estimators.no_pooling("MathAch ~ SES", data("hsb40"), "School")],
    "fixed_effects": [_fe, lambda: estimators.fixed_effects("MathAch ~ SES", data("hsb40"), "School", "dummy")],
    "between": [lambda: estimators.between("MathAch ~ SES", data("hsb40"), "School")],
    "two_stage": [lambda: estimators.two_stage("MathAch ~ SES", data("hsb40"), "School", level2="Sector"),
                  lambda: estimators.two_stage("MathAch ~ SES", data("hsb40"), "School")],
    "per_group_average": [lambda: estimators.per_group_average("MathAch ~ SES", data("hsb40"), "School", "Sector")],
    "random_effects_gls": [_re],
    "within_between": [lambda: estimators.within_between("MathAch ~ SES", data("hsb40"), "School", "SES"),
                       lambda: estimators.within_between("MathAch ~ SES", data("hsb40"), "School", "SES",
                                                         kind="mundlak")],
    "lrt": [lambda: inference.lrt(*_sleep_pair()), lambda: inference.lrt(*_sleep_pair(), refit=False)],
    "bootstrap_lrt": [lambda: inference.bootstrap_lrt(*_sleep_pair(), n_boot=3, seed=1, progress=False)],
    "parametric_bootstrap": [
        lambda: inference.parametric_bootstrap(fit(), lambda m: m.fixef, n_boot=2, seed=1, progress=False)],
    "hausman": [lambda: inference.hausman(_fe(), _re()), lambda: inference.hausman(_fe(), fit())],
    "icc": [lambda: variance.icc(fit()), lambda: variance.icc(fit(), "School")],
    "icc_table": [lambda: variance.icc_table(fit())],
    "icc_anova": [lambda: variance.icc_anova(data("hsb40"), "MathAch", "School")],
    "design_effect": [lambda: variance.design_effect(0.1, 30)],
    "se_inflation": [lambda: variance.se_inflation(0.5, 0.2, 31)],
    "shrinkage": [lambda: variance.shrinkage(fit()), lambda: variance.shrinkage(fit(), "School")],
    "gls_mean": [lambda: variance.gls_mean(fit("MathAch ~ 1 + (1 | School)"))],
    "center": [lambda: groups.center(data("hsb40"), "SES", "School"),
               lambda: groups.center(data("hsb40"), "SES", "School", how="grand")],
    "group_table": [lambda: groups.group_table(data("hsb40"), "School")],
    "variable_levels": [lambda: groups.variable_levels(data("hsb40"), "School")],
    "glmer": [lambda: binary_fit(), lambda: binary_fit("use ~ urban + age + (1 | district)"),
              lambda: glmm.glmer("use ~ urban + (1 | district)", data("contraception"), nagq=5),
              lambda: glmm.glmer("y ~ trt + (1 | subject)", data("epil"), "poisson")],
    "marginal_predict": [lambda: glmm.marginal_predict(binary_fit())],
    "attenuation": [lambda: glmm.attenuation(binary_fit())],
    "cluster_robust": [lambda: robust.cluster_robust("MathAch ~ SES", data("hsb40"), "School"),
                       lambda: robust.cluster_robust("MathAch ~ SES", data("hsb40"), "School", type="CR1")],
    # power: tiny grids, few replicates
    "power_simulation": [lambda: _power_simulation("cluster_randomised", effect=0.5),
                         lambda: _power_simulation("variance", test=["lrt", "f"])],
    "power_replicates": [lambda: _power_replicates("level1", effect=0.3),
                         lambda: _power_replicates("variance", test="f")],
    "summarise_power": [lambda: power.summarise_power(_power_replicates("cluster_randomised", effect=0.5))],
    "analytic_power": [lambda: power.analytic_power("cluster_randomised", n_groups=[10, 20], n_per_group=5, icc=0.1,
                                                    effect=0.5),
                       lambda: power.analytic_power("variance", n_groups=10, n_per_group=5, icc=0.1, test="lrt")],
    "budget_designs": [lambda: power.budget_designs(20000, cost_group=300, cost_person=10, n_per_group=[10, 40])],
    "optimal_group_size": [lambda: power.optimal_group_size(0.1, cost_group=300, cost_person=10)],
    "model_table": [lambda: report.model_table([fit()]),
                    lambda: report.model_table({"intercept": fit(), "slope": fit("MathAch ~ SES + (SES | School)")})],
    # small-sample inference on one fit
    "coef_table": [lambda: ddf.coef_table(_sleep_pair()[1]),
                   lambda: ddf.coef_table(_sleep_reml(), "kenward-roger", level=0.9),
                   lambda: ddf.coef_table(_sleep_pair()[1], "asymptotic")],
    "contrast_test": [lambda: ddf.contrast_test(_sleep_pair()[1], [[0, 1]]),
                      lambda: ddf.contrast_test(_sleep_reml(), [[0, 1]], "kenward-roger"),
                      lambda: ddf.contrast_test(_sleep_pair()[1], [[1, 0], [0, 1]], "asymptotic")],
    "satterthwaite_df": [lambda: ddf.satterthwaite_df(_sleep_pair()[1], [0, 1])],
    "kenward_roger_df": [lambda: ddf.kenward_roger_df(_sleep_reml(), [0, 1])],
    "vcov_kenward_roger": [lambda: ddf.vcov_kenward_roger(_sleep_reml())],
    "anova": [lambda: ftests.anova(_interaction()), lambda: ftests.anova(_interaction(), "asymptotic")],
    "type3_contrasts": [lambda: ftests.type3_contrasts(_interaction())],
    "conf_int": [lambda: profile.conf_int(_sleep_pair()[0]), lambda: profile.conf_int(_sleep_pair()[0], "profile"),
                 lambda: profile.conf_int(_sleep_pair()[0], "bootstrap", n_boot=3)],
    "profile_conf_int": [lambda: profile.profile_conf_int(_sleep_pair()[0], level=0.9)],
    "variance_parameters": [lambda: profile.variance_parameters(_sleep_pair()[1])],
    "wald_variance_conf_int": [lambda: profile.wald_variance_conf_int(_sleep_pair()[0])],
    "r2": [lambda: rsquared.r2(fit()), lambda: rsquared.r2(_centred())],
    "nakagawa": [lambda: rsquared.nakagawa(fit()), lambda: rsquared.nakagawa(_centred())],
    "snijders_bosker": [lambda: rsquared.snijders_bosker(fit()), lambda: rsquared.snijders_bosker(fit(), 20)],
    "rights_sterba": [lambda: rsquared.rights_sterba(_centred())],
    # simulated data
    "simulate_two_level": [lambda: simulate.simulate_two_level(5, seed=1)],
    "true_effects": [lambda: simulate.true_effects(simulate.simulate_two_level(5, seed=1))],
    "simulate_clustered": [lambda: simulate.simulate_clustered(5, 4, 0.2, 0.2, seed=1)],
    "simulate_crossed": [lambda: simulate.simulate_crossed(4, 4, seed=1)],
    "simulate_random_intercept": [lambda: simulate.simulate_random_intercept(5, 4, 1.0, 1.0, seed=1)],
    "run_simulation": [lambda: simulate.run_simulation(lambda rng: {"draw": rng.normal()}, 3, seed=1, progress=False)],
}
#: Functions whose DataFrame is data (columns named after the user's variables), not a result table.
DATA_FRAMES = {"center", "group_table", "variable_levels", "parametric_bootstrap", "vcov_kenward_roger",
               "simulate_two_level", "true_effects", "simulate_clustered", "simulate_crossed",
               "simulate_random_intercept", "run_simulation"}


def _public_functions():
    for module in MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield module.__name__, name


PUBLIC = sorted(set(_public_functions()))


@cache
def results(name: str) -> tuple:
    """Call every case of `name`, recording the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = tuple(call() for call in CALLS[name])
    return out, tuple(caught)


# ------------------------------------------------------------------ checks
def check_columns(table: pd.DataFrame, where: str) -> None:
    bad = FORBIDDEN_COLUMNS & {str(c) for c in table.columns}
    assert not bad, f"{where} has old-dialect column(s) {sorted(bad)}"


def check_coef(table: pd.DataFrame, where: str) -> None:
    assert isinstance(table, pd.DataFrame), where
    columns = list(table.columns)
    assert columns[-len(COEF):] == COEF, f"{where}: columns {columns}"
    assert set(columns[:-len(COEF)]) <= COEF_KEYS, f"{where}: key columns {columns[:-len(COEF)]}"
    numeric = table[COEF[1:]]
    assert all(pd.api.types.is_float_dtype(numeric[c]) for c in numeric), f"{where}: {numeric.dtypes}"
    finite = table.dropna(subset=["std_error"])
    assert (finite["conf_low"] <= finite["estimate"]).all() and (finite["estimate"] <= finite["conf_high"]).all()


def check_test_row(table: pd.DataFrame, where: str, first=TEST) -> None:
    assert isinstance(table, pd.DataFrame), where
    keys = [c for c in table.columns[:len(TEST_KEYS)] if c in TEST_KEYS]
    columns = list(table.columns[len(keys):])
    assert columns[:len(first)] == first, f"{where}: columns {list(table.columns)}"
    assert table["method"].map(type).eq(str).all()
    for column in first[1:]:
        assert pd.api.types.is_float_dtype(table[column]), f"{where}: {column} is {table[column].dtype}"


def check_object(obj, where: str) -> None:
    """The attributes every result shares, whatever it is."""
    assert not hasattr(obj, "fit") or callable(getattr(obj, "fit")), f"{where} has .fit; use .backend"
    if where.split("#")[0] not in DISPLAYS:
        assert not hasattr(obj, "table"), f"{where} has .table; use coef_table() or a named table"
    if hasattr(obj, "nobs"):
        assert type(obj.nobs) is int, f"{where}.nobs is {type(obj.nobs).__name__}"
    if hasattr(obj, "ngroups"):
        assert isinstance(obj.ngroups, dict), f"{where}.ngroups is {type(obj.ngroups).__name__}"
        assert all(isinstance(k, str) and type(v) is int for k, v in obj.ngroups.items()), where
    if hasattr(obj, "coef_table"):
        check_coef(obj.coef_table(), f"{where}.coef_table()")
        assert list(obj.coef_table(level=0.9).columns) == list(obj.coef_table().columns)
    if hasattr(obj, "test"):
        check_test_row(obj.test, f"{where}.test")
        assert len(obj.test) == 1
    if isinstance(getattr(obj, "varcorr", None), pd.DataFrame):
        assert list(obj.varcorr.columns) == VARCORR, f"{where}.varcorr"
    if isinstance(getattr(obj, "ranef", None), pd.DataFrame):
        assert list(obj.ranef.columns) == RANEF, f"{where}.ranef"
    for name, value in vars(obj).items():
        if isinstance(value, pd.DataFrame) and name not in ("model_data", "frame"):
            check_columns(value, f"{where}.{name}")
    assert len(repr(obj).splitlines()) <= 40, f"repr of {where} is long"


# ------------------------------------------------------------------ the walk
def test_every_public_function_is_walked():
    names = {name for _, name in PUBLIC}
    missing = names - set(CALLS) - set(NOT_RESULTS)
    assert not missing, f"public functions without a schema case: {sorted(missing)}"
    assert not (set(CALLS) - names), "cases for names that are not public"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_return_type_does_not_depend_on_the_arguments(name):
    outs, _ = results(name)
    assert len({type(o) for o in outs}) == 1, [type(o).__name__ for o in outs]
    frames = [o for o in outs if isinstance(o, pd.DataFrame)]
    if frames and name not in DATA_FRAMES:
        assert all(list(f.columns) == list(frames[0].columns) for f in frames)


def check_interval(table: pd.DataFrame, where: str) -> None:
    assert list(table.columns) == ["term", "estimate", "conf_low", "conf_high"], f"{where}: {list(table.columns)}"


def check_power(table: pd.DataFrame, where: str) -> None:
    assert "method" in table.columns and table["method"].map(type).eq(str).all(), f"{where}: {list(table.columns)}"


#: Table results with a fixed layout: checked beyond the old-dialect words.
FRAME_SCHEMAS = {
    "coef_table": check_coef,
    "contrast_test": lambda table, where: check_test_row(table, where, F_TEST),
    "anova": lambda table, where: check_test_row(table, where, F_TEST),
    "conf_int": check_interval, "profile_conf_int": check_interval, "wald_variance_conf_int": check_interval,
    "power_simulation": check_power, "power_replicates": check_power, "summarise_power": check_power,
    "analytic_power": check_power,
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_results_follow_the_schema(name):
    outs, _ = results(name)
    for i, out in enumerate(outs):
        where = f"{name}#{i}"
        if isinstance(out, pd.DataFrame) and name not in DATA_FRAMES:
            check_columns(out, where)
            FRAME_SCHEMAS.get(name, lambda table, where: None)(out, where)
        elif not isinstance(out, (pd.DataFrame, pd.Series, float, np.ndarray, dict)):
            check_object(out, where)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_warnings_belong_to_one_family(name):
    _, caught = results(name)
    for w in caught:
        assert issubclass(w.category, mlmcourse.MlmWarning), f"{name} warned {w.category.__name__}: {w.message}"


def test_lrt_keeps_lme4s_anova_layout():
    for table in results("lrt")[0]:
        assert list(table.columns) == LRT and len(table) == 2
        assert table["npar"].dtype.kind == "i" and table["df"].dtype.kind == "f"


def test_f_tests_have_numerator_and_denominator_df():
    check_test_row(results("per_group_average")[0][0].wald, "wald", F_TEST)
    mv = results("two_stage")[0][0].mv_test
    check_test_row(mv, "mv_test", F_TEST)
    assert (mv["df"] == mv["num_df"]).all()
    empty = results("two_stage")[0][1].mv_test  # no level-2 term: no test, the same columns
    assert list(empty.columns) == list(mv.columns) and empty.empty


def test_lmer_counts_and_tables():
    m = fit("MathAch ~ SES + (SES | School)")
    assert type(m.nobs) is int and m.ngroups == {"School": 40}
    assert list(m.ranef.columns) == RANEF and list(m.varcorr.columns) == VARCORR
    check_coef(m.coef_table(), "lmer")
    assert np.isinf(m.coef_table(ddf="asymptotic")["df"]).all()
    assert np.isfinite(m.coef_table()["df"]).all()  # Satterthwaite by default, as lmerTest


def test_single_number_functions_return_floats():
    for name in ("icc", "design_effect", "se_inflation"):
        assert all(type(o) is float for o in results(name)[0]), name


def test_the_warning_family_is_exported():
    for name in ("LmerWarning", "SingularFitWarning", "ConvergenceWarning", "DataWarning"):
        assert issubclass(getattr(mlmcourse, name), mlmcourse.MlmWarning)
    assert issubclass(mlmcourse.MlmWarning, UserWarning)


def test_small_sample_f_tests_share_the_test_layout():
    for table in results("contrast_test")[0]:
        check_test_row(table, "contrast_test", F_TEST)
        assert len(table) == 1 and (table["df"] == table["num_df"]).all()
    assert np.isinf(results("contrast_test")[0][2]["den_df"]).all()
    for table in results("anova")[0]:
        assert list(table.columns) == ["term", *F_TEST], list(table.columns)
        check_test_row(table, "anova", F_TEST)


def test_power_tables_name_the_test_method():
    for name in ("power_simulation", "power_replicates", "summarise_power", "analytic_power"):
        for table in results(name)[0]:
            assert "method" in table.columns, name
    labels = set(results("power_simulation")[0][1]["method"])
    assert labels == {power.TESTS["lrt"], power.TESTS["f"]}
    assert set(results("power_replicates")[0][1]["method"]) == {"f"}  # the code, as passed in `test=`


def test_variable_levels_says_where_a_variable_varies():
    table = results("variable_levels")[0][0].set_index("variable")
    assert list(table.columns) == ["varies_at", "groups_varying"]
    assert table.loc["SES", "varies_at"] == 1 and table.loc["Sector", "varies_at"] == 2


def test_r2_parts_are_numbers():
    for out in results("nakagawa")[0] + results("snijders_bosker")[0]:
        assert all(type(v) is float for v in out.values()), out


def test_mixed_model_fits_expose_the_engine_fit_as_backend():
    for m in (fit(), binary_fit()):
        assert m.backend is m._fit and np.array_equal(m.backend.beta, m.fixef.to_numpy())
        assert callable(m.refit) and callable(m.simulate)
