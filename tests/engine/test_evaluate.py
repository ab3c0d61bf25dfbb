"""Evaluation maths on hand-made predictions, and the retrieval baseline on hand-made features."""

import csv
import json

import numpy as np
import pytest
import torch

from topoloc.engine.evaluate import PREDICTION_COLUMNS, EvaluationResult, PoseEvaluation, evaluate_poses
from topoloc.engine.retrieval import extract_features, nearest_neighbours, retrieve_poses
from topoloc.geodesy import LocalFrame, wgs84_to_ecef

FRAME = LocalFrame.named("comballaz")


def _rot_z(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def _poses(n, seed=0):
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, 3] = rng.uniform(-500, 500, (n, 3)) + [0, 0, 300]
    for i in range(n):
        c2w[i, :3, :3] = _rot_z(rng.uniform(-180, 180)) @ np.diag([1.0, -1.0, -1.0])  # looking down
    return c2w


def test_known_offsets_give_known_errors():
    gt = _poses(4)
    pred = gt.copy()
    pred[:, :3, 3] += [3.0, 4.0, 0.0]  # a 3-4-5 triangle: 5 m
    pred[:, :3, :3] = _rot_z(8.0) @ gt[:, :3, :3]  # 8 deg about the world's up axis
    ev = evaluate_poses(pred, gt, FRAME, flights=["a", "a", "b", "b"], domains=["synthetic", "real"] * 2)
    np.testing.assert_allclose(ev.translation_m, 5.0, atol=1e-9)
    np.testing.assert_allclose(ev.rotation_deg, 8.0, atol=1e-6)
    s = ev.summary(domain="real")
    assert s.count == 2 and s.median_m == pytest.approx(5.0)
    assert s.within["10m_7deg"] == 0.0 and s.within["10m_10deg"] == 1.0
    assert ev.summary(flight="b").count == 2
    summaries = ev.summaries()
    assert set(summaries["by_domain"]) == {"synthetic", "real"}
    assert set(summaries["by_flight"]) == {"real/a", "real/b", "synthetic/a", "synthetic/b"}


def test_errors_are_summarised_per_group():
    gt = _poses(4, seed=1)
    pred = gt.copy()
    pred[:, 0, 3] += [1.0, 2.0, 30.0, 40.0]
    ev = evaluate_poses(pred, gt, FRAME, domains=["synthetic", "synthetic", "real", "real"])
    assert ev.summary(domain="synthetic").median_m == pytest.approx(1.5)
    assert ev.summary(domain="real").mean_m == pytest.approx(35.0)
    assert ev.summary().p90_m == pytest.approx(np.percentile([1, 2, 30, 40], 90))
    with pytest.raises(ValueError, match="no image with domain"):
        ev.summary(domain="winter")


def test_rows_convert_to_ecef_wgs84_and_cesium_angles():
    # A camera 200 m above the origin's ellipsoid point, yaw 30, pitch -60, roll 0 (Cesium / DJI).
    from topoloc.geodesy import cesium_to_c2w

    lat, lon, h = 46.3705, 7.065, 1610.0
    x, y, z = wgs84_to_ecef(lat, lon, h)
    c2w_ecef = cesium_to_c2w([[float(x), float(y), float(z), 30.0, -60.0, 0.0]])
    c2w_enu = FRAME.c2w_ecef_to_enu(c2w_ecef)
    ev = PoseEvaluation("model", ["img0"], "flight", "real", c2w_enu, c2w_enu, FRAME)
    row = ev.rows()[0]
    assert row["true_lat_deg"] == pytest.approx(lat, abs=1e-9)
    assert row["true_lon_deg"] == pytest.approx(lon, abs=1e-9)
    assert row["true_h_m"] == pytest.approx(h, abs=1e-6)
    assert (row["pred_yaw_deg"], row["pred_pitch_deg"], row["pred_roll_deg"]) == pytest.approx((30.0, -60.0, 0.0), abs=1e-6)
    assert row["true_ecef_x_m"] == pytest.approx(float(x), abs=1e-6)
    # The origin's height is 1410 m, so the camera is 200 m up in ENU, straight above the origin.
    assert (row["true_east_m"], row["true_north_m"], row["true_up_m"]) == pytest.approx((0.0, 0.0, 200.0), abs=1e-6)
    assert row["translation_error_m"] == 0.0


def test_coverage_distance_to_nearest_training_pose():
    train = _poses(3, seed=2)
    test = train[[1]].copy()
    test[:, :3, 3] += [0.0, 6.0, 8.0]  # 10 m from training pose 1
    ev = evaluate_poses(test, test, FRAME, train_c2w=train)
    assert ev.nearest_train_m[0] == pytest.approx(10.0)
    assert ev.nearest_train_deg[0] == pytest.approx(0.0, abs=1e-6)


def test_result_writes_csv_and_json(tmp_path):
    gt = _poses(3, seed=3)
    pred = gt.copy()
    pred[:, 2, 3] += 12.0
    model = evaluate_poses(pred, gt, FRAME, names=["a", "b", "c"], domains="real", flights="f", train_c2w=gt)
    retr = PoseEvaluation("retrieval", ["a", "b", "c"], "f", "real", gt, gt, FRAME)
    paths = EvaluationResult(model, retr, gt).write(tmp_path)
    with open(paths["predictions"]) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(PREDICTION_COLUMNS)
    assert [r["method"] for r in rows] == ["model"] * 3 + ["retrieval"] * 3
    assert float(rows[0]["translation_error_m"]) == pytest.approx(12.0)
    summary = json.loads(paths["summary"].read_text())
    assert summary["methods"]["model"]["all"]["median_m"] == pytest.approx(12.0)
    assert summary["methods"]["retrieval"]["all"]["median_m"] == 0.0
    assert summary["coverage"]["all"]["median_m"] == pytest.approx(0.0)


def test_bad_inputs_name_the_argument():
    gt = _poses(2)
    with pytest.raises(ValueError, match="pred_c2w"):
        evaluate_poses(gt[:1], gt, FRAME)
    with pytest.raises(ValueError, match="names"):
        evaluate_poses(gt, gt, FRAME, names=["only-one"])
    with pytest.raises(ValueError, match="gt_c2w"):
        evaluate_poses(gt, gt[:, :3], FRAME)


def test_nearest_neighbours_known_answer():
    db = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    # Cosine similarity ignores the scale: query 0 is closest to row 3 (45 deg), query 1 to row 2.
    q = torch.tensor([[5.0, 4.0, 0.0], [0.1, 0.0, 3.0], [-1.0, 0.0, 0.0]])
    idx, sim = nearest_neighbours(q, db, chunk_size=2)
    assert idx.tolist() == [3, 2, 1]  # query 2: rows 1 and 2 tie at 0; the lowest index wins
    assert sim[0].item() == pytest.approx(9.0 / (np.sqrt(41) * np.sqrt(2)))
    with pytest.raises(ValueError, match="same width"):
        nearest_neighbours(q[:, :2], db)


def test_retrieve_poses_takes_the_neighbours_pose():
    db_c2w = _poses(4, seed=4)
    feats = torch.eye(4)
    pred, idx, _ = retrieve_poses(feats[[2, 0]] + 0.01, feats, db_c2w)
    assert idx.tolist() == [2, 0]
    np.testing.assert_array_equal(pred, db_c2w[[2, 0]])
    with pytest.raises(ValueError, match="database_c2w"):
        retrieve_poses(feats, feats, db_c2w[:3])


def test_extract_features_uses_the_pooled_backbone_output():
    from topoloc.models import create_model

    torch.manual_seed(0)
    model = create_model("atloc_resnet18", feat_dim=32).train()
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    feats = extract_features(model, images, batch_size=2)
    assert feats.shape == (5, model.backbone.pooled_dim) and model.training
    model.eval()
    with torch.no_grad():
        ref = model.backbone(model.normalize(images))[1]
    torch.testing.assert_close(feats, ref, rtol=1e-4, atol=1e-5)


class _ConstantPose(torch.nn.Module):
    """A 'model' that always predicts the code (0, 0, 0, 0, 0, 0): the training mean, identity rotation."""

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))

    def normalize(self, x):
        return x

    def forward(self, x):
        return torch.zeros(x.shape[0], 6, device=x.device)


def test_evaluate_runs_a_model_on_caches_with_retrieval():
    from topoloc.data.cache import ImageCache
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.engine.evaluate import evaluate

    torch.manual_seed(0)
    train_c2w = torch.as_tensor(_poses(6, seed=5))
    train = ImageCache(torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8), train_c2w,
                       domains=["synthetic"] * 6, flights=["lhs"] * 6)
    # The test set: two training images again (their nearest neighbour is themselves).
    test = ImageCache(train.images[[1, 4]].clone(), train_c2w[[1, 4]].clone(), names=["a", "b"],
                      domains=["real"] * 2, flights=["f"] * 2)
    # Identity reference: the model's all-zero code then decodes to the identity rotation.
    norm = PoseNormalizer.fit(train_c2w, rotation_reference="identity", rotation="log_quat")
    result = evaluate(_ConstantPose(), norm, [test], frame=FRAME, train_set=train, batch_size=4)
    mean = train_c2w[:, :3, 3].mean(0).numpy()
    expected_m = np.linalg.norm(train_c2w[[1, 4], :3, 3].numpy() - mean, axis=1)
    np.testing.assert_allclose(result.model.translation_m, expected_m, rtol=1e-9)
    # Identity rotation vs a nadir camera (diag(1, -1, -1) rotated about up): 180 deg.
    np.testing.assert_allclose(result.model.rotation_deg, 180.0, atol=1e-5)
    np.testing.assert_allclose(result.retrieval.translation_m, 0.0, atol=1e-9)
    np.testing.assert_allclose(result.model.nearest_train_m, 0.0, atol=1e-9)
    assert result.model.names == ["a", "b"] and result.model.domains == ["real", "real"]
    with pytest.raises(ValueError, match="train_set"):
        evaluate(_ConstantPose(), norm, [test], frame=FRAME)
