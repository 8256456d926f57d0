"""Data generators and the simulation runner."""

import joblib
import numpy as np
import pandas as pd
import pytest

from mlmcourse import simulate as sim
from mlmcourse.variance import icc_anova


def draw(rng, n=5, shift=0.0):
    x = rng.normal(shift, 1.0, size=n)
    return {"mean": x.mean(), "first": x[0]}


# ----------------------------------------------------------------- simulate_two_level
def test_two_level_columns_ids_and_sizes():
    data = sim.simulate_two_level(25, seed=1)
    assert list(data.columns) == ["group", "x", "y"]
    assert data["group"].nunique() == 25 and data["group"].iloc[0] == "01"
    sizes = data["group"].value_counts()
    assert sizes.min() >= 2
    truth = sim.true_effects(data)
    assert list(truth.index) == sorted(data["group"].unique())
    assert (truth["n"] == sizes.reindex(truth.index)).all()
    assert {"u0", "u1", "intercept", "slope"} <= set(truth.columns)


def test_two_level_is_reproducible_and_seed_dependent():
    a = sim.simulate_two_level(10, seed=7)
    pd.testing.assert_frame_equal(a, sim.simulate_two_level(10, seed=7))
    assert not a["y"].equals(sim.simulate_two_level(10, seed=8)["y"])
    pd.testing.assert_frame_equal(a, sim.simulate_two_level(10, seed=np.random.default_rng(7)))


def test_two_level_follows_its_model():
    # the design of the SCS course text: gamma = (12, 2), G = [[16, 8], [8, 25]], sigma2 = 20, n_j ~ Poisson(30)
    data = sim.simulate_two_level(2000, seed=3)
    truth = sim.true_effects(data)
    assert truth["n"].mean() == pytest.approx(30, abs=0.5)
    np.testing.assert_allclose(np.cov(truth[["u0", "u1"]].T), [[16, 8], [8, 25]], rtol=0.1)
    line = truth.loc[data["group"]]
    residual = data["y"].to_numpy() - line["intercept"].to_numpy() - line["slope"].to_numpy() * data["x"]
    assert residual.var() == pytest.approx(20, rel=0.03)
    assert data["x"].std() == pytest.approx(1.0, rel=0.03)


def test_two_level_fixed_sizes_and_bad_arguments():
    data = sim.simulate_two_level(4, mean_size=12, size_dist="fixed", seed=1)
    assert (data["group"].value_counts() == 12).all()
    with pytest.raises(ValueError, match="size_dist"):
        sim.simulate_two_level(4, size_dist="uniform")
    with pytest.raises(ValueError, match="G must be"):
        sim.simulate_two_level(4, G=[[1, 2], [2, 1]])


def test_true_effects_needs_the_attrs():
    with pytest.raises(ValueError, match="true effects"):
        sim.true_effects(pd.DataFrame({"group": ["1"], "y": [0.0]}))


# ----------------------------------------------------------------- other generators
def test_clustered_has_the_requested_iccs():
    data = sim.simulate_clustered(300, 20, icc_x=0.4, icc_y=0.1, seed=2)
    assert data.shape == (6000, 3)
    assert icc_anova(data, "x", "group").icc == pytest.approx(0.4, abs=0.06)
    assert icc_anova(data, "y", "group").icc == pytest.approx(0.1, abs=0.04)
    with pytest.raises(ValueError, match="icc_x"):
        sim.simulate_clustered(10, 5, icc_x=1.5, icc_y=0.1)


def test_crossed_design_is_complete_with_condition_between_stimuli():
    data = sim.simulate_crossed(6, 8, seed=1)
    assert data.shape == (48, 5)
    assert (data.groupby(["participant", "stimulus"]).size() == 1).all()
    assert (data.groupby("stimulus")["condition"].nunique() == 1).all()
    assert (data.groupby("participant")["condition"].nunique() == 2).all()
    assert list(data["condition"].cat.categories) == ["A", "B"]
    assert set(data["c"]) == {-0.5, 0.5}
    with pytest.raises(ValueError, match="even"):
        sim.simulate_crossed(6, 7)


def test_crossed_effect_shifts_condition_b():
    data = sim.simulate_crossed(200, 40, effect=3.0, participant_sd=0.1, participant_slope_sd=0.1,
                                stimulus_sd=0.1, seed=9)
    means = data.groupby("condition", observed=True)["y"].mean()
    assert means["B"] - means["A"] == pytest.approx(3.0, abs=0.15)


def test_random_intercept_unbalanced_and_covariates():
    data = sim.simulate_random_intercept(3, [2, 3, 4], tau2=1.0, sigma2=4.0, beta=(1.0, 2.0, 3.0), seed=2)
    assert list(data.columns) == ["group", "x1", "x2", "y"]
    assert data["group"].value_counts().sort_index().tolist() == [2, 3, 4]
    one = sim.simulate_random_intercept(3, 5, tau2=1.0, sigma2=1.0, beta=(0.0, 1.0), seed=2)
    assert list(one.columns) == ["group", "x", "y"] and one.attrs["icc"] == 0.5
    none = sim.simulate_random_intercept(3, 5, tau2=1.0, sigma2=1.0, seed=2)
    assert list(none.columns) == ["group", "y"]
    assert len(sim.true_effects(none)) == 3
    with pytest.raises(ValueError, match="3 sizes for 4 groups"):
        sim.simulate_random_intercept(4, [2, 3, 4], tau2=1.0, sigma2=1.0)


# ----------------------------------------------------------------- run_simulation
def test_run_simulation_is_identical_for_any_n_jobs():
    serial = sim.run_simulation(draw, 20, seed=42, progress=False)
    parallel = sim.run_simulation(draw, 20, seed=42, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(serial, parallel)
    with joblib.parallel_config(backend="threading"):
        threaded = sim.run_simulation(draw, 20, seed=42, n_jobs=None, progress=False)
    pd.testing.assert_frame_equal(serial, threaded)


def test_run_simulation_streams_come_from_seed_sequence_spawn():
    out = sim.run_simulation(draw, 4, seed=42, progress=False)
    streams = np.random.SeedSequence(42).spawn(4)
    expected = [np.random.default_rng(s).normal(0.0, 1.0, size=5)[0] for s in streams]
    np.testing.assert_array_equal(out["first"], expected)
    assert out["rep"].tolist() == [0, 1, 2, 3]
    assert out.attrs == {"seed": 42, "n_reps": 4}


def test_run_simulation_seed_changes_results():
    a = sim.run_simulation(draw, 10, seed=1, progress=False)
    b = sim.run_simulation(draw, 10, seed=2, progress=False)
    assert not np.allclose(a["mean"], b["mean"])


def test_run_simulation_progress_bar_can_be_switched_off(capsys):
    sim.run_simulation(draw, 5, seed=1, progress=False)
    assert capsys.readouterr().err == ""
    sim.run_simulation(draw, 5, seed=1, progress=True)
    assert "replicates" in capsys.readouterr().err


def test_run_simulation_grid_from_a_dict_of_lists():
    out = sim.run_simulation(draw, 3, seed=5, progress=False, params={"n": [2, 50], "shift": [0.0, 10.0]})
    assert list(out.columns) == ["n", "shift", "rep", "mean", "first"]
    assert len(out) == 12
    assert out.groupby(["n", "shift"]).size().eq(3).all()
    assert out.loc[out["shift"] == 10.0, "mean"].mean() > 5
    # common random numbers: replicate r uses the same stream in every setting
    first = out.pivot_table(index="rep", columns="shift", values="first", aggfunc="first")
    np.testing.assert_allclose(first[10.0] - first[0.0], 10.0)


def test_run_simulation_grid_from_a_list_of_dicts_and_fixed_values():
    out = sim.run_simulation(draw, 2, seed=5, progress=False, params=[{"n": 3}, {"n": 4, "shift": 1.0}])
    assert len(out) == 4 and out["shift"].isna().sum() == 2
    fixed = sim.run_simulation(draw, 2, seed=5, progress=False, params={"n": 3, "shift": 1.0})
    assert len(fixed) == 2 and (fixed["n"] == 3).all()


def test_run_simulation_accepts_several_rows_per_replicate():
    def methods(rng):
        x = rng.normal(size=10)
        return [{"method": "mean", "value": x.mean()}, {"method": "median", "value": float(np.median(x))}]

    out = sim.run_simulation(methods, 3, seed=1, progress=False)
    assert len(out) == 6 and out["rep"].tolist() == [0, 0, 1, 1, 2, 2]


def test_run_simulation_reports_the_failing_replicate():
    def fails(rng, n):
        if n > 1:
            raise ZeroDivisionError("boom")
        return {"ok": 1}

    with pytest.raises(RuntimeError, match=r"replicate 0 with parameters \{'n': 2\} failed.*boom"):
        sim.run_simulation(fails, 2, seed=1, progress=False, params={"n": [1, 2]})


def test_run_simulation_checks_its_arguments():
    with pytest.raises(ValueError, match="seed"):
        sim.run_simulation(draw, 2, seed=None, progress=False)
    with pytest.raises(ValueError, match="rep"):
        sim.run_simulation(lambda rng: {"rep": 1}, 2, seed=1, progress=False)
    with pytest.raises(TypeError, match="dict"):
        sim.run_simulation(lambda rng: 3.0, 2, seed=1, progress=False)
