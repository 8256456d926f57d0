"""The course's figures: matplotlib + seaborn, one function per picture.

Functions that draw data follow seaborn's axes-level convention
``fn(data, *, x=..., y=..., group=..., hue=..., ax=None, **kwargs) -> Axes``;
figure-level ones return the Figure (or a seaborn FacetGrid). Functions that
draw a fitted model take the :class:`~mlmcourse.lmm.LmerResult` and never refit.
None of them calls ``plt.show()``.

==========================  ==================================================
``set_theme``               shared look for book, notebooks ("notebook") and slides ("talk")
``group_lines``             small multiples: points and OLS line per group
``pooling_lines``           complete / no / partial pooling lines per group
``within_between``          pooled, within and between slopes (Simpson, Robinson)
``shrinkage_arrows``        BLUE -> BLUP arrows against group size
``shrinkage_beta_space``    group OLS -> BLUP arrows in (intercept, slope) space
``beta_space``              group OLS estimates with confidence ellipses
``dispersion_ellipse``      the ellipse of a 2 x 2 covariance matrix
``caterpillar``             conditional modes with intervals, sorted
``variance_partition``      stacked variance components with the ICC
``varying_slopes``          fitted group lines with the fixed-effect lines
``variance_fan``            between-group variance as a function of x
``residual_plots``          residuals vs fitted and normal Q-Q plots
``power_curves``            power against the number of groups, one curve per group size
``cost_tradeoff``           power of the designs one budget buys
``variance_decomposition``  Rights & Sterba shares of total, within and between variance
==========================  ==================================================
"""

from mlmcourse.plots._base import COLORS, PALETTE, set_theme
from mlmcourse.plots.explained import variance_decomposition
from mlmcourse.plots.data import beta_space, dispersion_ellipse, group_lines, within_between
from mlmcourse.plots.fitted import caterpillar, residual_plots, variance_fan, variance_partition, varying_slopes
from mlmcourse.plots.power import cost_tradeoff, power_curves
from mlmcourse.plots.pooling import pooling_lines, shrinkage_arrows, shrinkage_beta_space

__all__ = [
    "PALETTE",
    "COLORS",
    "set_theme",
    "group_lines",
    "pooling_lines",
    "within_between",
    "shrinkage_arrows",
    "shrinkage_beta_space",
    "beta_space",
    "dispersion_ellipse",
    "caterpillar",
    "variance_partition",
    "varying_slopes",
    "variance_fan",
    "residual_plots",
    "power_curves",
    "cost_tradeoff",
    "variance_decomposition",
]
