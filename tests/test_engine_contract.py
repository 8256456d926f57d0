"""What mlmcourse._engine takes from mixedlm, named one by one.

The adapter uses mixedlm's public optimizer (LMMOptimizer.optimize,
get_start_theta, objective, with_response) and four private names that have no
public equivalent. If a mixedlm release renames or changes any of them, these
tests fail with the name, before a fit can silently change its numbers.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import mlmcourse
from mlmcourse import _engine

reml = pytest.importorskip("mixedlm.estimation.reml")


@pytest.fixture(scope="module")
def problem():
    data = mlmcourse.load("sleepstudy")
    codes = np.unique(data["Subject"].to_numpy(), return_inverse=True)[1]
    days = data["Days"].to_numpy(dtype=float)
    block = _engine.Block(codes, int(codes.max()) + 1, np.column_stack([np.ones_like(days), days]))
    X = np.column_stack([np.ones_like(days), days])
    return _engine.Problem(data["Reaction"].to_numpy(dtype=float), X, [block])


def test_the_pinned_engine_version_is_installed():
    from importlib import metadata

    assert metadata.version("mixedlm").startswith("1.3."), "the adapter is written for mixedlm 1.3.x"


def test_private_flag_reml_has_rust_exists():
    # used by _engine.backend() to refuse the pure-Python fallback
    assert isinstance(reml._HAS_RUST, bool) and reml._HAS_RUST


def test_private_attribute_rust_cache_exists(problem):
    # used by Problem._optimizer() to check the compiled core is in use
    optimizer = problem._optimizer(True)
    assert optimizer._rust_cache is not None


def test_private_method_final_evaluation_returns_the_estimates(problem):
    # used by Problem._estimates(): beta, sigma, u (the random effects b), deviance, fixed_information
    optimizer = problem._optimizer(True)
    theta = optimizer.get_start_theta()
    core = optimizer._final_evaluation(theta)
    for name in ("beta", "sigma", "u", "deviance", "fixed_information"):
        assert hasattr(core, name), f"LMMOptimizer._final_evaluation() result lost {name!r}"
    assert np.asarray(core.fixed_information).shape == (2, 2)
    assert core.deviance == pytest.approx(optimizer.objective(theta), rel=1e-12)


def test_private_method_optimization_functions_gives_the_exact_gradient(problem):
    # used by Problem._projected_gradient() for OptInfo.max_gradient
    optimizer = problem._optimizer(True)
    objective, gradient = optimizer._optimization_functions("L-BFGS-B", True)
    assert gradient is not None, "LMMOptimizer._optimization_functions() no longer gives a gradient"
    theta = np.array([1.3, 0.1, 0.4])
    step = 1e-6
    numeric = [(optimizer.objective(theta + step * e) - optimizer.objective(theta - step * e)) / (2 * step)
               for e in np.eye(3)]
    np.testing.assert_allclose(gradient(theta), numeric, rtol=1e-5, atol=1e-6)
    assert objective(theta) == pytest.approx(optimizer.objective(theta), rel=1e-12)


def test_public_optimize_takes_the_arguments_the_adapter_passes():
    parameters = inspect.signature(reml.LMMOptimizer.optimize).parameters
    for name in ("start", "method", "maxiter", "options", "restart_edge", "use_analytic_gradient"):
        assert name in parameters, f"LMMOptimizer.optimize() lost the argument {name!r}"


def test_public_optimize_result_has_the_fields_the_adapter_reads(problem):
    optimizer = problem._optimizer(True)
    result = optimizer.optimize(method="L-BFGS-B", maxiter=50, options={"maxfun": 50}, restart_edge=True,
                                use_analytic_gradient=True)
    for name in ("theta", "deviance", "converged", "message", "function_evals", "gradient_norm"):
        assert hasattr(result, name), f"LMMOptimizer.optimize() result lost {name!r}"


def test_theta_order_and_scaling_round_trip(problem):
    theta = np.array([0.9667, 0.0152, 0.2309])  # lme4's sleepstudy theta
    assert np.allclose(problem.to_lme4_theta(problem.from_lme4_theta(theta)), theta, rtol=1e-14)
    T = problem.factors(theta)[0]
    assert T[0, 0] == theta[0] and T[1, 0] == theta[1] and T[1, 1] == theta[2] and T[0, 1] == 0
