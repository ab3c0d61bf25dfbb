"""Experiments: the applications built on the engine, on the top floor beside the CLI.

- `recipe`: the back-ends of ``topoloc train | evaluate | saliency`` (`run_recipe`,
  `evaluate_checkpoint`, `explain_checkpoint`); `recipe_spec`: the YAML recipe itself (data +
  `TrainConfig`: `Recipe`, `load_recipe`).
- `demo`: render Mini-Comballaz, train with and without augmentation, evaluate, report (`run_demo`);
  `demo_settings`: its flights, runs and presets (`DemoConfig`, `demo_config`); `demo_report`: the
  report's own text (introduction, per-flight table, aims).
- `leakage`: what `evaluate_checkpoint` guards against: test images at training poses, a training flight's
  test split taken with other split options than training took, a report written over a demo's.
- `study`, `study_settings`, `study_table`: the sim-to-real study (many runs: their settings and
  configs, their markdown table).

They call the engine (`topoloc.engine`), the evaluation results and the reports (`topoloc.reporting`);
nothing below imports them.

The names of `recipe_spec`, `demo_settings`, `demo_report` and `study_settings` are also importable
from `recipe`, `demo` and `study`, where they lived before those modules were split.
"""

from topoloc.experiments.demo import DemoConfig, demo_config, run_demo
from topoloc.experiments.recipe import Recipe, evaluate_checkpoint, explain_checkpoint, load_recipe, run_recipe
from topoloc.experiments.study import (OPS, PRESETS, STUDY_DOMAINS, StudyConfig, prepare_data, run_study, study_config,
                                       study_runs)
from topoloc.experiments.study_table import aggregate, format_pm, mean_std, results_markdown, write_section

__all__ = [
    # recipes and the CLI's back-ends
    "Recipe",
    "load_recipe",
    "run_recipe",
    "evaluate_checkpoint",
    "explain_checkpoint",
    # the demo
    "DemoConfig",
    "demo_config",
    "run_demo",
    # the sim-to-real study
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
