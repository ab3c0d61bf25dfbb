"""Experiments built on the engine: studies that train and evaluate many runs and write their tables.

They sit on the applications floor (beside the CLI, the demo and the recipes): they call the engine
(`topoloc.engine.train`, `topoloc.engine.evaluate`) and write markdown, and nothing below imports them.
"""

from topoloc.experiments.study import OPS, PRESETS, STUDY_DOMAINS, StudyConfig, prepare_data, run_study, study_config, study_runs
from topoloc.experiments.study_table import aggregate, format_pm, mean_std, results_markdown, write_section

__all__ = [
    "OPS",
    "PRESETS",
    "STUDY_DOMAINS",
    "StudyConfig",
    "prepare_data",
    "run_study",
    "study_config",
    "study_runs",
    "aggregate",
    "format_pm",
    "mean_std",
    "results_markdown",
    "write_section",
]
