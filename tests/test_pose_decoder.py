"""The standalone numpy pose decoder (`topoloc.pose_decoder`): its refusals and its geodesy worked by hand or
against pyproj. It runs without the export extra: its agreement with the ONNX graph and `PoseNormalizer` is in
tests/engine/test_export.py, which needs onnx."""

import numpy as np
import pytest
from pyproj import Transformer

from topoloc.pose_decoder import ROTATION_SIZES, c2w_enu_to_ecef, decode_pose, ecef_to_wgs84

STATS = {"mean_m": [0.0, 0.0, 0.0], "std_m": [1.0, 1.0, 1.0], "rotation": "6d"}


@pytest.mark.parametrize("code, stats, match", [
    ([0.0] * 9, [0.0, 1.0], r"stats: expected a dict \(the export JSON or a normaliser state\), got list"),
    ([0.0] * 9, {"mean_m": [0.0, 0.0, 0.0]}, r"stats: expected 'mean_m' and 'std_m' .* got keys \['mean_m'\]"),
    ([0.0] * 9, STATS | {"rotation": "euler"},
     r"stats: unknown rotation code 'euler'; expected one of \['6d', 'log_quat', 'quat'\]"),
    ([0.0] * 9, STATS | {"rotation": ["6d"]}, r"stats: unknown rotation code \['6d'\]"),
    # PoseNormalizer refuses these three: a damaged model.json decoded to a mirrored position, every position at
    # the mean, or rotations scaled by 2
    ([0.0] * 9, STATS | {"std_m": [-1.0, 1.0, 1.0]}, r"stats: 'std_m': expected positive standard deviations"),
    ([0.0] * 9, STATS | {"std_m": [0.0, 0.0, 0.0]}, r"stats: 'std_m': expected positive standard deviations"),
    ([0.0] * 9, STATS | {"reference_rotation": [2, 0, 0, 0, 2, 0, 0, 0, 2]},
     r"stats: 'reference_rotation': expected a rotation matrix"),
    ([0.0] * 9, STATS | {"reference_rotation": [1, 0, 0, 0, 1, 0, 0, 0, -1]},  # a reflection: det -1
     r"stats: 'reference_rotation': expected a rotation matrix"),
    (1.0, STATS, r"code: expected shape \(\.\.\., 9\) \(translation, '6d' rotation\), got \(\)"),
])
def test_decode_pose_refuses_bad_statistics_and_codes_by_name(code, stats, match):
    with pytest.raises(ValueError, match=match):
        decode_pose(code, stats)


def test_the_three_rotation_codes_and_their_sizes():
    # the module doc: log_quat k = 3, quat k = 4, 6d k = 6, nothing else
    assert ROTATION_SIZES == {"log_quat": 3, "quat": 4, "6d": 6}


def test_a_log_quaternion_code_against_scipy_with_its_statistics_by_hand():
    # AtLoc's log-quaternion u is half the rotation vector: q = (cos|u|, sin|u| u / |u|) turns by 2|u| about u,
    # which scipy builds from the rotation vector 2u. Relative to R0 (a quarter turn about z), scaled by std_m
    # and shifted by mean_m: t = (0.2 * 10 + 100, 1.0 * 2 - 20, -4.0 * 0.5 + 5) = (102, -18, 3) m.
    from scipy.spatial.transform import Rotation

    u = np.array([0.3, -0.5, 0.2])
    r0 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    stats = {"mean_m": [100.0, -20.0, 5.0], "std_m": [10.0, 2.0, 0.5], "rotation": "log_quat",
             "reference_rotation": r0.reshape(-1).tolist()}
    c2w = decode_pose(np.concatenate([[0.2, 1.0, -4.0], u]), stats)
    np.testing.assert_allclose(c2w[:3, :3], r0 @ Rotation.from_rotvec(2 * u).as_matrix(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(c2w[:3, 3], [102.0, -18.0, 3.0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(c2w[3], [0.0, 0.0, 0.0, 1.0])


def test_the_export_jsons_own_rotation_entry_chooses_the_code():
    # model.json holds the normaliser's state under "normalizer" and the code type beside it; a state without
    # "rotation" (written before the code was chosen) then takes the file's. Quaternion (w, x, y, z) = (0, 1, 0, 0)
    # is half a turn about x: R = diag(1, -1, -1) (as a log-quaternion, u = (1, 0, 0) would be a 2 rad turn).
    stats = {"normalizer": {"mean_m": [1.0, 2.0, 3.0], "std_m": [1.0, 1.0, 1.0]}, "rotation": "quat"}
    c2w = decode_pose([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], stats)
    np.testing.assert_allclose(c2w[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    np.testing.assert_array_equal(c2w[:3, 3], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("frame, match", [
    ({"lat_deg": 91.0, "lon_deg": 7.0, "h_m": 1410.0}, r"latitude in \[-90, 90\]"),
    ({"lat_deg": 46.37, "lon_deg": 7.0, "h_m": float("inf")}, "a finite height"),
])
def test_a_frame_off_the_globe_is_refused(frame, match):
    with pytest.raises(ValueError, match=match):
        c2w_enu_to_ecef(np.eye(4), frame)


def test_ecef_to_wgs84_at_the_plausible_ceiling_matches_pyproj():
    # 100 km up (the highest a pose may be) at 45 and 60 deg north: the latitude iteration must have converged,
    # to 1e-10 deg (about 0.01 mm), not stopped a step early (about 8e-10 deg off here).
    lat, lon, h = np.array([45.0, 60.0]), np.array([7.0, -120.0]), np.array([100_000.0, 100_000.0])
    x, y, z = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True).transform(lon, lat, h)
    got = ecef_to_wgs84(x, y, z)
    np.testing.assert_allclose(got[0], lat, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[1], lon, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[2], h, rtol=0, atol=1e-4)


@pytest.mark.parametrize("key, value, size", [
    ("std_m", [1.0, 1.0], 3),  # two numbers: was numpy's broadcasting error
    ("mean_m", [0.0, 0.0, float("nan")], 3),
    ("mean_m", "origin", 3),
    ("reference_rotation", [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], 9),
])
def test_statistics_of_the_wrong_size_or_not_finite_are_refused_by_key(key, value, size):
    with pytest.raises(ValueError, match=rf"^stats: '{key}': expected {size} finite numbers, got "):
        decode_pose([0.0] * 9, STATS | {key: value})
    # the same key inside an export JSON's "normalizer" entry
    with pytest.raises(ValueError, match=rf"^stats: '{key}': expected {size} finite numbers"):
        decode_pose([0.0] * 9, {"normalizer": STATS | {key: value}})


def test_a_reference_rotation_as_nine_numbers_or_a_matrix_is_accepted():
    # R0 = a quarter turn about up (z): east -> north. The identity 6D code decodes to R0 itself.
    r0 = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    code = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    for ref in (r0, sum(r0, [])):
        np.testing.assert_allclose(decode_pose(code, STATS | {"reference_rotation": ref})[:3, :3], r0, atol=1e-12)
