"""mlmcourse: multilevel (hierarchical, mixed) models for the course.

The package loads the course's data sets, fits linear mixed models with
lme4's numbers, computes the estimators the course compares and draws the
course's figures.
"""

from mlmcourse.datasets import datasets, describe, load

__version__ = "0.1.0"

__all__ = ["load", "datasets", "describe", "__version__"]
