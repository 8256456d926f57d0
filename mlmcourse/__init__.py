"""mlmcourse: multilevel (hierarchical, mixed) models for the course.

The package loads the course's data sets, fits linear mixed models with
lme4's numbers, computes the estimators the course compares and draws the
course's figures.

Submodules: ``datasets``, ``groups``, ``lmm`` (``lmer``), ``glmm`` (``glmer``), ``estimators``,
``inference`` (with ``ddf``, ``ftests``, ``profile``, ``rsquared``, ``robust``), ``variance``,
``simulate``, ``power``, ``plots`` and ``report``; each is imported on
first use, so ``import mlmcourse`` stays fast.
"""

from importlib import import_module

from mlmcourse.datasets import datasets, describe, load
from mlmcourse._messages import ConvergenceWarning, DataWarning, LmerWarning, MlmWarning, SingularFitWarning
from mlmcourse.glmm import GlmerResult, SeparationWarning, glmer, marginal_predict
from mlmcourse.lmm import LmerControl, LmerDesign, LmerResult, lmer, lmer_design

__version__ = "0.2.0"

_SUBMODULES = ("groups", "estimators", "inference", "variance", "simulate", "plots", "lmm", "glmm", "power", "report",
               "robust", "ddf", "ftests", "profile", "rsquared")
_FUNCTIONS = {"anova": "ftests", "r2": "rsquared"}

__all__ = [
    "load", "datasets", "describe", "lmer", "lmer_design", "LmerControl", "LmerDesign", "LmerResult", "MlmWarning",
    "DataWarning", "LmerWarning", "SingularFitWarning", "ConvergenceWarning", "glmer", "GlmerResult",
    "SeparationWarning", "marginal_predict", "__version__", *_SUBMODULES, *_FUNCTIONS,
]


def __getattr__(name):
    if name in _SUBMODULES:
        return import_module(f"mlmcourse.{name}")
    if name in _FUNCTIONS:
        return getattr(import_module(f"mlmcourse.{_FUNCTIONS[name]}"), name)
    raise AttributeError(f"module 'mlmcourse' has no attribute {name!r}")
