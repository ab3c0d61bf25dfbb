"""Evaluation results and the brackets that need no training loop.

The floor between the components (models, data) and the engine: what an evaluation produced and how
it is written, apart from the loop that runs a model over datasets (`topoloc.engine.evaluate`).

- `results`: one method's per-image errors (`PoseEvaluation`), a model's evaluation beside its
  brackets (`EvaluationResult`), the predictions CSV and the summary JSON.
- `baselines`: the constant pose and the coverage ceiling (poses only, no model).
- `retrieval`: the nearest-neighbour retrieval baseline: descriptors (a model's pooled backbone
  features or a model-free thumbnail), nearest neighbours by cosine similarity, their poses.
- `verify`: render-and-compare verification: of several candidate poses per photo (the regressor's,
  the retrieved ones), the one whose rendered view looks most like the photo, or a weighted mean of the best few.
- `landcover`: errors split by the share of a land-cover class in view (which views carry the error).
- `localisation`, `gis`: predicted poses of new photos (no ground truth) in every frame a user
  needs, and their CSV / GeoJSON / KML files (`topoloc.engine.localise` builds them).
"""

from topoloc.evaluation.baselines import chordal_mean_rotation, constant_pose, coverage_ceiling
from topoloc.evaluation.gis import GIS_FORMATS, LOCALISATION_COLUMNS, gis_format, write_localisation
from topoloc.evaluation.landcover import SharePart, class_shares, errors_by_share, rows_of_poses
from topoloc.evaluation.localisation import Localisation, checked_geoid_offset
from topoloc.evaluation.results import (CEILING, CONSTANT, PREDICTION_COLUMNS, TRAINING_FIT, VALIDATION,
                                        EvaluationResult, PoseEvaluation, evaluate_poses, nearest_pose,
                                        write_rows_csv)
from topoloc.evaluation.retrieval import (FEATURE_SOURCES, THUMBNAIL_SIZE_HW, extract_features, nearest_neighbours,
                                          retrieval_label, retrieve_poses, thumbnail_features)
from topoloc.evaluation.verify import (Verification, average_hypotheses, candidate_poses, dense_features, grey_features,
                                       verify_poses, view_similarity)

__all__ = [
    # results
    "EvaluationResult",
    "PoseEvaluation",
    "evaluate_poses",
    "nearest_pose",
    "write_rows_csv",
    "PREDICTION_COLUMNS",
    "CONSTANT",
    "CEILING",
    "TRAINING_FIT",
    "VALIDATION",
    # land cover in view
    "SharePart",
    "class_shares",
    "errors_by_share",
    "rows_of_poses",
    # brackets
    "chordal_mean_rotation",
    "constant_pose",
    "coverage_ceiling",
    "FEATURE_SOURCES",
    "THUMBNAIL_SIZE_HW",
    "extract_features",
    "nearest_neighbours",
    "retrieval_label",
    "retrieve_poses",
    "thumbnail_features",
    # render-and-compare
    "Verification",
    "candidate_poses",
    "dense_features",
    "grey_features",
    "verify_poses",
    "average_hypotheses",
    "view_similarity",
    # new photos
    "Localisation",
    "checked_geoid_offset",
    "LOCALISATION_COLUMNS",
    "GIS_FORMATS",
    "gis_format",
    "write_localisation",
]
