"""Evaluation maths on hand-made predictions, and the retrieval baseline on hand-made features."""

import csv
import json

import numpy as np
import pytest
import torch

from topoloc.evaluation import PREDICTION_COLUMNS, EvaluationResult, PoseEvaluation, evaluate_poses
from topoloc.evaluation.retrieval import extract_features, nearest_neighbours, retrieve_poses
from topoloc.geodesy import LocalFrame

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

    # The prediction is another pose (yaw -45, pitch -30, roll 10, 0.001 deg north-east and 50 m lower), so that a
    # row writing the true pose in the predicted columns, or the reverse, fails. ECEF by pyproj, independently.
    from pyproj import Transformer

    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    lat, lon, h = 46.3705, 7.065, 1610.0
    p_lat, p_lon, p_h = lat + 0.001, lon + 0.001, h - 50.0
    x, y, z = to_ecef.transform(lon, lat, h)
    px, py, pz = to_ecef.transform(p_lon, p_lat, p_h)
    true_enu = FRAME.c2w_ecef_to_enu(cesium_to_c2w([[x, y, z, 30.0, -60.0, 0.0]]))
    pred_enu = FRAME.c2w_ecef_to_enu(cesium_to_c2w([[px, py, pz, -45.0, -30.0, 10.0]]))
    ev = PoseEvaluation("model", ["img0"], "flight", "real", pred_enu, true_enu, FRAME)
    row = ev.rows()[0]
    assert (row["true_lat_deg"], row["true_lon_deg"]) == pytest.approx((lat, lon), abs=1e-9)
    assert (row["pred_lat_deg"], row["pred_lon_deg"]) == pytest.approx((p_lat, p_lon), abs=1e-9)
    assert (row["true_h_m"], row["pred_h_m"]) == pytest.approx((h, p_h), abs=1e-6)
    assert ((row["true_yaw_deg"], row["true_pitch_deg"], row["true_roll_deg"])
            == pytest.approx((30.0, -60.0, 0.0), abs=1e-6))
    assert ((row["pred_yaw_deg"], row["pred_pitch_deg"], row["pred_roll_deg"])
            == pytest.approx((-45.0, -30.0, 10.0), abs=1e-6))
    assert (row["true_ecef_x_m"], row["true_ecef_y_m"], row["true_ecef_z_m"]) == pytest.approx((x, y, z), abs=1e-6)
    assert (row["pred_ecef_x_m"], row["pred_ecef_y_m"], row["pred_ecef_z_m"]) == pytest.approx((px, py, pz), abs=1e-6)
    # The origin's height is 1410 m, so the true camera is 200 m up in ENU, straight above the origin.
    assert (row["true_east_m"], row["true_north_m"], row["true_up_m"]) == pytest.approx((0.0, 0.0, 200.0), abs=1e-6)
    assert row["translation_error_m"] == pytest.approx(float(np.hypot(np.hypot(px - x, py - y), pz - z)), abs=1e-6)


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
    pred34, _, _ = retrieve_poses(feats[[2, 0]] + 0.01, feats, db_c2w[:, :3])  # (N, 3, 4): the bottom row added
    np.testing.assert_array_equal(pred34, db_c2w[[2, 0]])
    with pytest.raises(ValueError, match=r"database_c2w: expected .* \(N, 4, 4\) or \(N, 3, 4\), got \(4, 2, 4\)"):
        retrieve_poses(feats, feats, db_c2w[:, :2])
    broken = db_c2w.copy()
    broken[2, 0, 3] = np.nan  # it came back as a prediction
    with pytest.raises(ValueError, match=r"^database_c2w: expected finite numbers, got NaN or inf"):
        retrieve_poses(feats, feats, broken)


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
    with pytest.raises(ValueError, match="train_set"):  # named retrieval sources without a database
        evaluate(_ConstantPose(), norm, [test], frame=FRAME, retrieval=("thumbnail", "model"))


# ---------------------------------------------------------------------- the brackets
def _nadir(yaw_deg, xyz):
    """A camera looking straight down (OpenCV axes in ENU), turned by ``yaw_deg`` about up, at ``xyz``."""
    c2w = np.eye(4)
    c2w[:3, :3] = _rot_z(yaw_deg) @ np.diag([1.0, -1.0, -1.0])
    c2w[:3, 3] = xyz
    return c2w


class _FixedPose(torch.nn.Module):
    """A 'model' that predicts the code of one fixed pose for every image (any code length)."""

    def __init__(self, normalizer, c2w):
        super().__init__()
        self.code = torch.nn.Parameter(torch.as_tensor(normalizer.encode(c2w[None]), dtype=torch.float32),
                                       requires_grad=False)
        self.backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 24, 4))

    def normalize(self, x):
        return x

    def forward(self, x):
        return self.code.expand(x.shape[0], -1)


def test_constant_pose_is_the_mean_translation_and_the_chordal_mean_rotation():
    from topoloc.evaluation.baselines import chordal_mean_rotation, constant_pose

    # Worked by hand: the translations average to (15, 15, 100); yaw +30 and -30 about the same
    # (vertical) axis average to yaw 0, for a nadir camera and for the bare rotations alike.
    train = np.stack([_nadir(30, [0, 0, 100]), _nadir(-30, [10, 20, 100]), _nadir(30, [20, 40, 100]),
                      _nadir(-30, [30, 0, 100])])
    pose = constant_pose(train)
    np.testing.assert_allclose(pose[:3, 3], [15.0, 15.0, 100.0], atol=1e-12)
    np.testing.assert_allclose(pose[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    np.testing.assert_allclose(chordal_mean_rotation(np.stack([_rot_z(30), _rot_z(-30)])), np.eye(3), atol=1e-12)
    # Yaw 0 and 90 average to yaw 45 (the projection of their sum); a rotation alone is its own mean.
    np.testing.assert_allclose(chordal_mean_rotation(np.stack([_rot_z(0), _rot_z(90)])), _rot_z(45), atol=1e-12)
    np.testing.assert_allclose(chordal_mean_rotation(_rot_z(70)[None]), _rot_z(70), atol=1e-12)
    with pytest.raises(ValueError, match="rotations_n33"):
        chordal_mean_rotation(np.zeros((0, 3, 3)))


def test_constant_pose_of_identical_oblique_poses_is_that_pose():
    from topoloc.evaluation.baselines import constant_pose

    # An oblique camera (yaw 30, pitch -40, roll 5) has a non-symmetric rotation, unlike the nadir
    # cameras above: a transposed mean would show. The mean of copies of one pose is that pose; the
    # chordal mean is invariant under a common rotation, so A Rz(+20) and A Rz(-20) average to A too.
    row = np.concatenate([FRAME.enu_to_ecef(np.array([[10.0, -20.0, 300.0]]))[0], [30.0, -40.0, 5.0]])
    oblique = FRAME.cesium_to_c2w(row[None])[0]
    rot = oblique[:3, :3]
    assert not np.allclose(rot, rot.T)
    np.testing.assert_allclose(constant_pose(np.stack([oblique] * 5)), oblique, atol=1e-9)
    pair = np.stack([oblique, oblique])
    pair[0, :3, :3] = rot @ _rot_z(20)
    pair[1, :3, :3] = rot @ _rot_z(-20)
    pair[0, :3, 3] += [4.0, 0.0, 0.0]
    pair[1, :3, 3] -= [4.0, 0.0, 0.0]
    np.testing.assert_allclose(constant_pose(torch.as_tensor(pair)), oblique, atol=1e-9)


def test_coverage_ceiling_weighs_the_angle_at_one_metre_per_degree_by_default():
    from topoloc.evaluation.baselines import coverage_ceiling

    # Worked by hand: the test pose is nadir, yaw 0, at (100, 100, 300). Training pose 0 sits 2 m
    # away turned 90 deg (d = 2 + 90 = 92), pose 1 sits 10 m away turned 3 deg (d = 13), pose 2
    # sits 40 m away, not turned (d = 40). By position alone pose 0 is nearest; at the documented
    # default of 1 m per degree, pose 1 is.
    train = np.stack([_nadir(90, [102, 100, 300]), _nadir(3, [100, 110, 300]), _nadir(0, [140, 100, 300])])
    test = _nadir(0, [100, 100, 300])[None]
    pred, cov = coverage_ceiling(train, test)
    np.testing.assert_array_equal(cov.nearest, [1])
    np.testing.assert_allclose(pred, train[[1]], atol=0)
    np.testing.assert_allclose(cov.distance_m, [10.0], atol=1e-9)
    np.testing.assert_allclose(cov.angle_deg, [3.0], atol=1e-6)
    # The weight is the one asked for: position alone picks pose 0, 100 m per degree pose 2.
    np.testing.assert_array_equal(coverage_ceiling(train, test, m_per_deg=0.0)[1].nearest, [0])
    np.testing.assert_array_equal(coverage_ceiling(train, test, m_per_deg=100.0)[1].nearest, [2])


def test_thumbnail_descriptor_uses_bt601_luma_red_left_blue_right():
    from topoloc.evaluation.retrieval import thumbnail_features

    # A 16x24 image (the thumbnail size, so the resize is the identity): left half pure red,
    # right half pure blue. Grey by BT.601: 0.299 on the left, 0.114 on the right; centred on the
    # mean 0.2065, that is +-0.0925, and at unit norm +-1/sqrt(384): + on the left, - on the right.
    img = torch.zeros(1, 3, 16, 24, dtype=torch.uint8)
    img[0, 0, :, :12] = 255
    img[0, 2, :, 12:] = 255
    expected = torch.full((16, 24), 1.0 / 384**0.5)
    expected[:, 12:] *= -1
    torch.testing.assert_close(thumbnail_features(img)[0], expected.flatten(), atol=1e-6, rtol=0)
    # Red, green, blue in thirds: 0.299, 0.587, 0.114 around their mean 1/3, at unit norm.
    thirds = torch.zeros(1, 3, 16, 24)
    for c in range(3):
        thirds[0, c, :, 8 * c:8 * (c + 1)] = 1.0
    grey = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).repeat_interleave(8).expand(16, 24)
    ref = (grey - grey.mean()).flatten()
    torch.testing.assert_close(thumbnail_features(thirds)[0].double(), ref / ref.norm(), atol=1e-6, rtol=0)


def _bracket_data():
    """Training set: 4 images; pose 0 sits 2 m from the test pose but turned 90 deg, pose 1 sits
    10 m away turned 3 deg. Test set: 2 images (test image 1 is an exact copy of training image 2)."""
    from topoloc.data.cache import ImageCache

    g = torch.Generator().manual_seed(0)
    train_c2w = np.stack([_nadir(90, [102, 100, 300]), _nadir(3, [100, 106, 308]), _nadir(-60, [-200, 0, 250]),
                          _nadir(60, [200, -40, 350])])
    images = torch.randint(0, 256, (4, 3, 16, 24), dtype=torch.uint8, generator=g)
    train = ImageCache(images, torch.as_tensor(train_c2w), names=[f"t{i}" for i in range(4)],
                       domains=["synthetic"] * 4, flights=["lhs"] * 4)
    test_c2w = np.stack([_nadir(0, [100, 100, 300]), train_c2w[2]])
    # Test image 0: a darker, lower-contrast copy of training image 3 (normalised cross-correlation 1).
    test_images = torch.stack([(images[3].float() * 0.5 + 20).round().to(torch.uint8), images[2]])
    test = ImageCache(test_images, torch.as_tensor(test_c2w), names=["q0", "q1"], domains=["real"] * 2,
                      flights=["f"] * 2)
    return train, train_c2w, test, test_c2w


def test_evaluate_brackets_against_hand_worked_values():
    from topoloc.data.cache import ImageCache
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.engine.evaluate import evaluate

    train, train_c2w, test, test_c2w = _bracket_data()
    norm = PoseNormalizer.fit(train_c2w)
    fixed = _nadir(0, [100, 100, 300])  # the model always answers test pose 0
    val = ImageCache(test.images[:1].clone(), torch.as_tensor(_nadir(10, [103, 104, 300])[None]), names=["v0"],
                     domains=["synthetic"], flights=["lhs"])
    result = evaluate(_FixedPose(norm, fixed), norm, [test], frame=FRAME, train_set=train, batch_size=2,
                      retrieval=("thumbnail", "model"), val_sets=[val], train_fit=3)
    # The model: exact on test image 0; on image 1 (training pose 2: 300, 100, 50 m away) |.| m and
    # the yaw turn of 60 deg.
    np.testing.assert_allclose(result.model.translation_m, [0.0, np.sqrt(300**2 + 100**2 + 50**2)], atol=1e-4)
    np.testing.assert_allclose(result.model.rotation_deg, [0.0, 60.0], atol=1e-4)
    # Constant pose: mean translation (50.5, 41.5, 302); the yaws 90, 3, -60, 60 of four nadir cameras
    # have a chordal mean at the yaw of the mean of their (cos, sin): atan2(sum sin, sum cos).
    mean_t = np.array([50.5, 41.5, 302.0])
    np.testing.assert_allclose(result.constant.pred_c2w[0, :3, 3], mean_t, atol=1e-9)
    yaws = np.radians([90.0, 3.0, -60.0, 60.0])
    mean_yaw = np.degrees(np.arctan2(np.sin(yaws).sum(), np.cos(yaws).sum()))
    np.testing.assert_allclose(result.constant.pred_c2w[0], _nadir(mean_yaw, mean_t), atol=1e-9)
    np.testing.assert_allclose(result.constant.translation_m, np.linalg.norm(test_c2w[:, :3, 3] - mean_t, axis=1))
    np.testing.assert_allclose(result.constant.rotation_deg, np.abs([mean_yaw - 0.0, mean_yaw + 60.0]), atol=1e-6)
    assert np.all(result.constant.pred_c2w == result.constant.pred_c2w[0])
    # Coverage ceiling (1 m/deg): test pose 0 takes training pose 1 (10 m + 3 deg = 13) over the
    # 2 m-away pose 0 (2 + 90 = 92); test pose 1 is training pose 2 itself.
    np.testing.assert_allclose(result.ceiling.translation_m, [10.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(result.ceiling.rotation_deg, [3.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(result.model.nearest_train_m, [10.0, 0.0], atol=1e-9)
    assert result.coverage.position_m[0] == pytest.approx(2.0)
    cov = result.coverage_summary()
    assert cov["real/f"]["count"] == 2 and cov["all"]["max_deg"] == pytest.approx(3.0)
    # Validation pose (103, 104, 300), yaw 10: training pose 1 (100, 106, 308), yaw 3: sqrt(77) m + 7 deg.
    assert (cov["validation"]["median_m"], cov["validation"]["median_deg"]) == pytest.approx((np.sqrt(77.0), 7.0))
    # Thumbnail retrieval: the exact copy finds training pose 2; the dimmed copy of image 3 finds pose 3.
    thumb = result.retrievals["thumbnail"]
    assert thumb.method == "retrieval (features: 16x24 grey thumbnail)"
    np.testing.assert_array_equal(thumb.pred_c2w, train_c2w[[3, 2]])
    assert result.retrievals["model"].method == "retrieval (features: trained model)"
    assert result.retrieval is thumb
    # Training fit: 3 of the 4 training images, evenly spaced (0, 2, 3), against the fixed pose.
    fit = result.training_fit
    assert fit.method == "training fit" and fit.names == ["t0", "t2", "t3"]
    np.testing.assert_allclose(fit.translation_m, np.linalg.norm(train_c2w[[0, 2, 3], :3, 3] - fixed[:3, 3], axis=1),
                               atol=1e-4)
    np.testing.assert_allclose(fit.rotation_deg, [90.0, 60.0, 60.0], atol=1e-4)
    assert result.validation.method == "validation"
    np.testing.assert_allclose(result.validation.translation_m, [5.0], atol=1e-4)
    np.testing.assert_allclose(result.validation.rotation_deg, [10.0], atol=1e-4)
    methods = [m.method for m in result.all_methods()]
    assert methods == ["model", "constant pose", "retrieval (features: 16x24 grey thumbnail)",
                       "retrieval (features: trained model)", "coverage ceiling", "training fit", "validation"]
    assert not result.notes


def test_evaluate_writes_every_bracket_and_says_what_is_missing(tmp_path):
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.engine.evaluate import evaluate

    train, train_c2w, test, _ = _bracket_data()
    norm = PoseNormalizer.fit(train_c2w)
    model = _FixedPose(norm, _nadir(0, [100, 100, 300]))
    result = evaluate(model, norm, test, frame=FRAME, train_set=train, retrieval="thumbnail_colour", train_fit=None)
    assert list(result.retrievals) == ["thumbnail_colour"] and len(result.training_fit) == 4
    paths = result.write(tmp_path)
    with open(paths["predictions"]) as f:
        methods = [r["method"] for r in csv.DictReader(f)]
    assert methods == (["model"] * 2 + ["constant pose"] * 2 + ["retrieval (features: 16x24 colour thumbnail)"] * 2
                       + ["coverage ceiling"] * 2 + ["training fit"] * 4)
    summary = json.loads(paths["summary"].read_text())
    assert set(summary["methods"]) == set(methods) and summary["m_per_deg"] == 1.0
    # Without the training set: only the model, and a note saying so.
    alone = evaluate(model, norm, test, frame=FRAME, retrieval=False)
    assert alone.methods() == [alone.model] and "No training set" in alone.notes[0]
    default = evaluate(model, norm, test, frame=FRAME)  # the default retrieval needs no training set: noted
    assert default.methods() == [default.model] and "No training set" in default.notes[0]
    with pytest.raises(ValueError, match="train_set: the retrieval baseline needs the training set"):
        evaluate(model, norm, test, frame=FRAME, retrieval="thumbnail")
    with pytest.raises(ValueError, match="retrieval: unknown feature source"):
        evaluate(model, norm, test, frame=FRAME, train_set=train, retrieval=("thumbnail", "sift"))
    with pytest.raises(ValueError, match="train_fit"):
        evaluate(model, norm, test, frame=FRAME, train_set=train, train_fit=-1)


def test_thumbnail_features_are_normalised_cross_correlation():
    from topoloc.evaluation.retrieval import thumbnail_features

    g = torch.Generator().manual_seed(1)
    images = torch.randint(30, 200, (5, 3, 32, 48), dtype=torch.uint8, generator=g)
    f = thumbnail_features(images)
    assert f.shape == (5, 16 * 24)
    torch.testing.assert_close(f.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(f.mean(dim=1), torch.zeros(5), atol=1e-6, rtol=0)
    # A gain and an offset of the brightness leave the descriptor unchanged (NCC is affine-invariant).
    brighter = (images.float() * 1.2 + 10).to(torch.uint8)
    torch.testing.assert_close(thumbnail_features(brighter), f, atol=2e-3, rtol=0)
    # A grey image of the 16x24 thumbnail size: the descriptor is the centred, normalised pixel values.
    grey = torch.arange(16 * 24, dtype=torch.float32).view(1, 1, 16, 24).expand(1, 3, 16, 24) / 400
    ref = grey[0, 0].flatten() - grey[0, 0].mean()
    torch.testing.assert_close(thumbnail_features(grey)[0], ref / ref.norm(), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="images"):
        thumbnail_features(torch.zeros(2, 1, 8, 8))


def test_a_uniform_image_has_the_zero_thumbnail_descriptor():
    # A flat frame (over-exposed, all sky) carries no layout: its descriptor must not be float noise scaled to
    # unit norm, which would match an arbitrary training image.
    from topoloc.evaluation.retrieval import thumbnail_features

    flat = torch.arange(256, dtype=torch.uint8).view(256, 1, 1, 1).expand(256, 3, 48, 72).contiguous()
    assert thumbnail_features(flat).abs().max() == 0
    assert thumbnail_features(torch.linspace(0, 1, 18).view(18, 1, 1, 1).expand(18, 3, 256, 384)).abs().max() == 0
    assert thumbnail_features(torch.full((2, 3, 20, 20), 0.3)).abs().max() == 0
    assert thumbnail_features(flat, colour=True).abs().max() == 0
    # One grey level of difference in a quarter of the image is a layout, and kept.
    step = flat[128:129].clone()
    step[..., :24, :36] += 1
    torch.testing.assert_close(thumbnail_features(step).norm(dim=1), torch.ones(1))


def test_evaluate_refuses_a_frame_other_than_the_models_or_the_datasets():
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.engine.checkpoint import frame_record
    from topoloc.engine.evaluate import evaluate

    train, train_c2w, test, _ = _bracket_data()
    norm = PoseNormalizer.fit(train_c2w)
    model = _FixedPose(norm, _nadir(0, [100, 100, 300]))
    epfl = LocalFrame.named("epfl")  # 40 km from Comballaz
    model.config = {"frame": frame_record(epfl)}  # as `load_model` records the training frame
    with pytest.raises(ValueError, match="trained in the epfl frame, not in comballaz"):
        evaluate(model, norm, test, frame=FRAME, retrieval=False)
    # The model's own frame, by object or by name, is accepted and gives the same positions.
    by_name = evaluate(model, norm, test, frame="epfl", retrieval=False)
    by_object = evaluate(model, norm, test, frame=epfl, retrieval=False)
    np.testing.assert_array_equal(by_name.model.pred_c2w, by_object.model.pred_c2w)
    # ... and as (lat, lon, h) or a dict, as everywhere else a frame is taken (a TypeError before)
    for given in ((46.5191, 6.5668, 390.0), {"lat_deg": 46.5191, "lon_deg": 6.5668, "h_m": 390.0}):
        by_numbers = evaluate(model, norm, test, frame=given, retrieval=False)
        np.testing.assert_array_equal(by_numbers.model.pred_c2w, by_object.model.pred_c2w)
    # A dataset that says which frame its poses are in must agree with `frame`.
    test.frame = FRAME
    with pytest.raises(ValueError, match=r"frame: datasets\[0\] .* holds poses in"):
        evaluate(model, norm, test, frame=epfl, retrieval=False)
    train.frame = FRAME
    del model.config
    test.frame = epfl
    with pytest.raises(ValueError, match="frame: train_set"):
        evaluate(model, norm, test, frame=epfl, train_set=train, retrieval=False)
    with pytest.raises(ValueError, match=r"^frame: expected a frame name .* got 46.37$"):
        evaluate(model, norm, test, frame=46.37, retrieval=False)


def test_evaluate_takes_device_auto_and_names_a_bad_device():
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.engine.evaluate import evaluate

    train, train_c2w, test, _ = _bracket_data()
    norm = PoseNormalizer.fit(train_c2w)
    model = _FixedPose(norm, _nadir(0, [100, 100, 300]))
    result = evaluate(model, norm, test, frame=FRAME, retrieval=False, device="auto")
    np.testing.assert_allclose(result.model.translation_m[0], 0.0, atol=1e-4)
    with pytest.raises(ValueError, match="device: expected 'auto'"):
        evaluate(model, norm, test, frame=FRAME, retrieval=False, device="gpu0")


def test_flags_of_another_type_are_refused_by_name():
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.engine.evaluate import evaluate
    from topoloc.engine.predict import predict

    train, train_c2w, test, _ = _bracket_data()
    norm = PoseNormalizer.fit(train_c2w)
    model = _FixedPose(norm, _nadir(0, [100, 100, 300]))
    # Any string is truthy: amp="no" asked for autocast, baselines="false" computed them.
    with pytest.raises(TypeError, match="amp: expected True or False, got str 'no'"):
        evaluate(model, norm, test, frame=FRAME, retrieval=False, amp="no")
    with pytest.raises(TypeError, match="baselines: expected True or False"):
        evaluate(model, norm, test, frame=FRAME, train_set=train, retrieval=False, baselines="false")
    with pytest.raises(TypeError, match="predict: return_codes: expected True or False, got int 1"):
        predict(model, test, norm, return_codes=1)


def test_arguments_of_another_type_are_refused_by_name():
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.engine.evaluate import evaluate

    train, train_c2w, test, _ = _bracket_data()
    norm = PoseNormalizer.fit(train_c2w)
    model = _FixedPose(norm, _nadir(0, [100, 100, 300]))
    # Each gave a bare "object of type 'int' has no len()" or "'int' object is not iterable".
    with pytest.raises(TypeError, match=r"datasets\[0\]: expected a dataset .* got int"):
        evaluate(model, norm, 3, frame=FRAME, retrieval=False)
    with pytest.raises(TypeError, match=r"val_sets\[1\]: expected a dataset .* got str"):
        evaluate(model, norm, test, frame=FRAME, retrieval=False, val_sets=[test, "val"])
    with pytest.raises(TypeError, match=r"train_set: expected a dataset .* got int"):
        evaluate(model, norm, test, frame=FRAME, retrieval=False, train_set=3)
    with pytest.raises(TypeError, match=r"train_set: expected one dataset .* got a list"):
        evaluate(model, norm, test, frame=FRAME, retrieval=False, train_set=[train, train])
    with pytest.raises(ValueError, match=r"retrieval: expected True, False, a feature source or a list"):
        evaluate(model, norm, test, frame=FRAME, train_set=train, retrieval=3)
    with pytest.raises(TypeError, match="method: expected the label"):
        evaluate(model, norm, test, frame=FRAME, retrieval=False, method=3)


def test_a_dict_of_datasets_is_refused_by_name():
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.engine.evaluate import evaluate

    train, train_c2w, test, _ = _bracket_data()
    norm = PoseNormalizer.fit(train_c2w)
    model = _FixedPose(norm, _nadir(0, [100, 100, 300]))
    # was "frame: the datasets have no frame", or with a frame a KeyError: 0 deep in the decoding
    for kwargs in ({}, {"frame": FRAME}):
        with pytest.raises(TypeError, match="^datasets: expected a dataset or a list of them, got dict$"):
            evaluate(model, norm, {"syn": test}, retrieval=False, **kwargs)
    with pytest.raises(TypeError, match="^val_sets: expected a dataset or a list of them, got dict$"):
        evaluate(model, norm, test, frame=FRAME, retrieval=False, val_sets={"val": test})
    with pytest.raises(TypeError, match="^train_set: expected one dataset, got dict$"):
        evaluate(model, norm, test, frame=FRAME, retrieval=False, train_set={"train": train})


def test_pose_evaluation_refuses_bad_inputs_by_name():
    gt = _poses(2)
    nan = gt.copy()
    nan[1, 0, 3] = np.nan
    cases = [
        (dict(pred_c2w=nan), ValueError, r"^pred_c2w: expected finite poses, got NaN or inf$"),
        (dict(pred_c2w=gt[:1]), ValueError, r"^pred_c2w has 1 poses but gt_c2w has 2; expected the same$"),
        (dict(pred_c2w=gt[:0], gt_c2w=gt[:0], names=[]), ValueError, r"^gt_c2w: expected at least one test image"),
        (dict(frame="comballaz"), TypeError, r"^frame: expected a topoloc.geodesy.LocalFrame, got str$"),
        (dict(nearest_train_m=[1.0]), ValueError, r"^nearest_train_m: expected 2 values \(one per image\), got 1$"),
    ]
    for kwargs, error, match in cases:
        args = dict(method="m", names=["a", "b"], flights="f", domains="d", pred_c2w=gt, gt_c2w=gt, frame=FRAME)
        with pytest.raises(error, match=match):
            PoseEvaluation(**(args | kwargs))


def test_default_names_groups_and_missing_coverage_in_the_rows():
    gt = _poses(3)
    ev = evaluate_poses(gt, gt, FRAME, flights=["b", "a", "a"], domains=["real", "synthetic", "real"])
    assert ev.names == ["0", "1", "2"]  # the documented default: the image's index
    assert ev.groups() == [("real", "a"), ("real", "b"), ("synthetic", "a")]  # sorted, not in order of appearance
    row = ev.rows()[0]  # no training poses given: the coverage columns are NaN, not 0
    assert np.isnan(row["nearest_train_m"]) and np.isnan(row["nearest_train_deg"])
    result = EvaluationResult(ev)
    assert result.coverage_summary() == {} and result.to_dict()["coverage"] == {}


def test_the_coverage_weight_is_passed_on():
    # The test pose at the origin; training pose 0 at 5 m with the same rotation, pose 1 at the same place turned
    # by 10 deg. At 1 m/deg (the default) pose 0 is nearer (5 + 0 < 0 + 10); at 0.1 m/deg pose 1 (0 + 1 < 5 + 0).
    test = np.eye(4)[None]
    train = np.tile(np.eye(4), (2, 1, 1))
    train[0, 0, 3] = 5.0
    train[1, :3, :3] = _rot_z(10.0)
    by_default = evaluate_poses(test, test, FRAME, train_c2w=train)
    assert (by_default.nearest_train_m[0], by_default.nearest_train_deg[0]) == pytest.approx((5.0, 0.0), abs=1e-6)
    weighted = evaluate_poses(test, test, FRAME, train_c2w=train, m_per_deg=0.1)
    assert (weighted.nearest_train_m[0], weighted.nearest_train_deg[0]) == pytest.approx((0.0, 10.0), abs=1e-6)


def test_coverage_summary_medians_per_group_and_the_nearest_position():
    from topoloc.data.pose_coverage import Coverage

    gt = _poses(4)
    near_m, near_deg = np.array([1.0, 2.0, 10.0, 30.0]), np.array([4.0, 0.0, 1.0, 2.0])
    model = PoseEvaluation("model", list("abcd"), ["f", "f", "g", "g"], "real", gt, gt, FRAME, near_m, near_deg)
    position = np.array([0.5, 1.0, 4.0, 8.0])
    cov = Coverage(near_m, near_deg, np.zeros(4, dtype=np.int64), position_m=position)
    summary = EvaluationResult(model, coverage=cov, notes=["no validation set"]).coverage_summary()
    # all four: median of 1, 2, 10, 30 m is (2 + 10) / 2 = 6 (the mean would be 10.75); of 0, 1, 2, 4 deg 1.5
    assert (summary["all"]["median_m"], summary["all"]["median_deg"]) == (6.0, 1.5)
    assert summary["all"]["median_position_m"] == 2.5  # (1 + 4) / 2
    assert (summary["real/f"]["median_m"], summary["real/f"]["median_position_m"]) == (1.5, 0.75)  # images a, b
    assert (summary["real/g"]["median_m"], summary["real/g"]["median_position_m"]) == (20.0, 6.0)  # images c, d
    # a coverage of other images (another length) gives no nearest-position figure rather than a wrong one
    other = Coverage(near_m[:3], near_deg[:3], np.zeros(3, dtype=np.int64), position_m=position[:3])
    assert "median_position_m" not in EvaluationResult(model, coverage=other).coverage_summary()["all"]
    assert EvaluationResult(model, notes=["no validation set"]).to_dict()["notes"] == ["no validation set"]


def test_every_retrieval_is_kept_the_single_one_first():
    gt = _poses(2)
    model, first, second = (PoseEvaluation(m, ["a", "b"], "f", "d", gt, gt, FRAME) for m in ("model", "r1", "r2"))
    # a retrieval passed alone beside a dict that already has a "model" entry keeps both, itself first
    both = EvaluationResult(model, retrieval=first, retrievals={"model": second})
    assert list(both.retrievals) == ["retrieval 1", "model"] and [m.method for m in both.baselines()] == ["r1", "r2"]
    # only a dict: `retrieval` is its first entry
    assert EvaluationResult(model, retrievals={"thumbnail": second, "model": first}).retrieval is second


def test_the_csv_keeps_ten_significant_digits(tmp_path):
    from topoloc.evaluation import write_rows_csv

    path = write_rows_csv([{"x": 1234.56789012345, "y": "label"}], tmp_path / "t.csv", columns=("x", "y"))
    assert path.read_text().splitlines() == ["x,y", "1234.56789,label"]  # 10 digits: 1234.567890 -> 1234.56789


def test_the_csv_writes_rounding_noise_as_zero(tmp_path):
    # a true roll of 0 came back from ECEF as -8.871220706e-15 deg in every predictions.csv
    from topoloc.evaluation import write_rows_csv

    rows = [{"x": -8.871220706e-15, "y": 2.0e-9}, {"x": 0.0, "y": -1234.5}]
    path = write_rows_csv(rows, tmp_path / "t.csv", columns=("x", "y"))
    assert path.read_text().splitlines() == ["x,y", "0,2e-09", "0,-1234.5"]


def test_nearest_neighbours_refuses_features_it_cannot_compare():
    db = torch.eye(3)
    cases = [
        (dict(chunk_size=0), r"^chunk_size: expected a positive integer, got 0$"),
        (dict(query_qd=torch.zeros(0, 3)),
         r"^query_qd: expected a non-empty feature matrix of shape \(N, D\), got \(0, 3\)$"),
        (dict(database_nd=torch.zeros(3, 0)), r"^database_nd: expected a non-empty feature matrix .* got \(3, 0\)$"),
        (dict(query_qd=torch.tensor([[1.0, float("nan"), 0.0]])),
         r"^query_qd: expected finite features, got NaN or inf$"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            nearest_neighbours(**(dict(query_qd=db, database_nd=db) | kwargs))


def test_retrieved_similarities_are_float64_cosines():
    # query (3, 4) against rows (1, 0) and (0, 1): cosines 3/5 and 4/5, row 1 the nearer
    _, idx, sim = retrieve_poses(np.array([[3.0, 4.0]], dtype=np.float32), np.eye(2, dtype=np.float32), _poses(2))
    assert idx.tolist() == [1] and sim.dtype == np.float64 and sim[0] == pytest.approx(0.8, abs=1e-7)


def test_retrieval_labels_name_the_features_or_the_given_detail():
    from topoloc.evaluation import retrieval_label

    assert retrieval_label("thumbnail") == "retrieval (features: 16x24 grey thumbnail)"
    assert retrieval_label("model", "augmented model") == "retrieval (features: augmented model)"
    with pytest.raises(ValueError, match=r"unknown feature source 'sift'; expected one of \['model', 'thumbnail'"):
        retrieval_label("sift")


def test_thumbnail_shrinks_as_pil_bilinear_does_with_antialiasing():
    from PIL import Image

    from topoloc.evaluation.retrieval import thumbnail_features

    # 48 x 72 noise shrunk three times: an antialiased resize averages each output pixel over its neighbours (as
    # PIL's BILINEAR resize, the reference torch's antialias=True follows), where plain bilinear sampling would
    # keep one input pixel in nine (a descriptor with cosine ~0.5 to this one).
    img = torch.randint(0, 256, (1, 3, 48, 72), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    luma = (img[0].double() / 255 * torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(3, 1, 1)).sum(0)
    ref = np.asarray(Image.fromarray(luma.numpy().astype(np.float32)).resize((24, 16), Image.BILINEAR), np.float64)
    ref = ref.ravel() - ref.mean()
    np.testing.assert_allclose(thumbnail_features(img)[0].numpy(), ref / np.linalg.norm(ref), rtol=0, atol=1e-5)


def test_thumbnail_features_refuse_bad_sizes_by_name():
    from topoloc.evaluation.retrieval import thumbnail_features

    img = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"^size_hw: expected \(H, W\) of positive integers, got \(0, 4\)$"):
        thumbnail_features(img, size_hw=(0, 4))
    for bad in (16, "16x24", None, (16, "a")):  # one number is no (H, W): named, not a bare TypeError
        with pytest.raises(ValueError, match=r"^size_hw: expected \(H, W\) of positive integers"):
            thumbnail_features(img, size_hw=bad)


class _Recorder(torch.nn.Module):
    """A backbone that records the batch sizes it sees and returns each image's mean as its feature."""

    def __init__(self):
        super().__init__()
        self.batches = []
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        self.batches.append(x.shape[0])
        return x.float().mean(dim=(1, 2, 3))[:, None] * self.scale


class _Recording(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = _Recorder()

    def normalize(self, x):
        return x


def test_extract_features_batches_restores_eval_mode_and_refuses_bad_images():
    model = _Recording().eval()
    feats = extract_features(model, torch.zeros(5, 3, 4, 4, dtype=torch.uint8), batch_size=2)
    assert feats.shape == (5, 1) and model.backbone.batches == [2, 2, 1]  # 5 images, 2 per forward pass
    assert not model.training  # a model in eval mode stays in eval mode
    with pytest.raises(ValueError, match=r"^images: expected a \(N, 3, H, W\) uint8 tensor, got \(2, 4, 4, 4\)$"):
        extract_features(model, torch.zeros(2, 4, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"^images: expected at least one image, got none$"):
        extract_features(model, torch.zeros(0, 3, 4, 4, dtype=torch.uint8))


def test_a_batch_size_below_one_is_refused_by_name():
    # was torch's "split_size can only be 0 if dimension size is 0, but got dimension size of 2", naming no argument
    from topoloc.evaluation.retrieval import thumbnail_features

    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=rf"^batch_size: expected a positive integer, got {bad}$"):
            thumbnail_features(images, batch_size=bad)
        with pytest.raises(ValueError, match=rf"^batch_size: expected a positive integer, got {bad}$"):
            extract_features(_Recording(), images, batch_size=bad)
