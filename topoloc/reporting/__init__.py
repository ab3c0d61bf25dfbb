"""Reports: the markdown evaluation report with its plots, and the saliency figures and class shares.

Written from what the engine produced (`topoloc.evaluation.EvaluationResult`, trained models and
datasets); the apps (`topoloc.experiments`, the CLI) call them. Plots use `matplotlib.figure.Figure`
without pyplot.

- `report`: the brackets headline, comparison table and ``report.md``.
- `plots`: the report's error CDFs and top-down map, and the saliency shares' bar chart.
- `saliency_figures`: saliency maps of a model on flights, their figures and ``saliency.md``.
- `saliency_shares`: where the saliency falls per semantic class, with bootstrap intervals.
- `landcover`: the "Where the error is" section: errors by the share of each land-cover class in view.
"""

from topoloc.reporting.landcover import LANDCOVER_COLUMNS, LANDCOVER_MIN_SHARE, landcover_section, view_shares
from topoloc.reporting.plots import plot_error_cdf, plot_shares, plot_topdown_map
from topoloc.reporting.report import brackets_headline, comparison_table, report_methods, write_report
from topoloc.reporting.saliency_figures import compute_saliency, feature_grid, plot_saliency_figure, saliency_report
from topoloc.reporting.saliency_shares import (ClassShares, bootstrap_mean, class_saliency_shares, per_image_shares,
                                               shares_table, stable_change_text)

__all__ = [
    "brackets_headline",
    "comparison_table",
    "plot_error_cdf",
    "plot_topdown_map",
    "report_methods",
    "write_report",
    "compute_saliency",
    "feature_grid",
    "plot_saliency_figure",
    "plot_shares",
    "saliency_report",
    "ClassShares",
    "bootstrap_mean",
    "class_saliency_shares",
    "per_image_shares",
    "shares_table",
    "stable_change_text",
    "LANDCOVER_COLUMNS",
    "LANDCOVER_MIN_SHARE",
    "landcover_section",
    "view_shares",
]
