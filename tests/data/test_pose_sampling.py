"""Training-pose samplers (corridor, Latin hypercubes) and TOPO-DataGen pose files.

Positions are checked in ENU computed independently of topoloc.geodesy, with pyproj's
topocentric conversion (ECEF -> ENU about the Comballaz origin).
"""

import numpy as np
import pytest
from pyproj import Transformer

from topoloc.data import (
    LHS_AREAS,
    corridor,
    latin_hypercube,
    lhs_area,
    lhs_envelope,
    load_pose_file,
    load_preset,
    save_pose_file,
)
from topoloc.data.pose_files import pose_file_path, pose_summary
from topoloc.data.pose_lhs import LhsArea
from topoloc.data.pose_sampling import fold_pitch_deg, wrap_deg
from topoloc.geodesy import LocalFrame

ORIGIN = (46.3705, 7.065, 1410.0)
TOPOCENTRIC = Transformer.from_pipeline(f"+proj=topocentric +ellps=WGS84 +lat_0={ORIGIN[0]} +lon_0={ORIGIN[1]} "
                                        f"+h_0={ORIGIN[2]}")
PLANNED = "comballaz-2020-11-06-planned"


def enu(rows):
    """ECEF of pose rows to Comballaz ENU metres with pyproj. Shape: (N, 6) -> (N, 3)."""
    rows = np.asarray(rows)
    return np.stack(TOPOCENTRIC.transform(rows[:, 0], rows[:, 1], rows[:, 2]), axis=1)


def rows_at(enu_n3, ypr):
    """Pose rows at Comballaz ENU points (through pyproj's inverse topocentric conversion)."""
    e = np.asarray(enu_n3, dtype=np.float64)
    x, y, z = TOPOCENTRIC.transform(e[:, 0], e[:, 1], e[:, 2], direction="INVERSE")
    return np.concatenate([np.stack([x, y, z], 1), np.broadcast_to(np.asarray(ypr, float), (len(e), 3))], axis=1)


def one_per_stratum(values, lo, hi, n):
    k = np.floor((np.asarray(values) - lo) / (hi - lo) * n).astype(int)
    return sorted(k.tolist()) == list(range(n))


# ------------------------------------------------------------------------------------- corridor
class TestCorridor:
    SIGMA_M = (15.0, 10.0, 8.0)  # across, along, up
    SIGMA_DEG = (15.0, 5.0, 3.0)  # yaw, pitch, roll

    @pytest.fixture(scope="class")
    @classmethod
    def sample(cls):
        flight = load_preset(PLANNED)
        rows, base = corridor(flight, 20_000, cls.SIGMA_M, cls.SIGMA_DEG, seed=3, return_base=True)
        return flight, rows, base

    def test_offsets_and_angles_have_the_asked_spread(self, sample):
        flight, rows, base = sample
        p = enu(flight)
        # direction of travel between neighbours (the planned flight never hovers: >= 3.7 m per frame)
        d = np.gradient(p[:, :2], axis=0)
        along = d / np.linalg.norm(d, axis=1, keepdims=True)
        across = np.stack([along[:, 1], -along[:, 0]], 1)  # 90 deg to the right, seen from above
        off = enu(rows) - p[base]
        comps = {
            "across": np.einsum("nk,nk->n", off[:, :2], across[base]),
            "along": np.einsum("nk,nk->n", off[:, :2], along[base]),
            "up": off[:, 2],
        }
        for (name, c), sigma in zip(comps.items(), self.SIGMA_M):
            assert abs(c.std() - sigma) < 0.03 * sigma, name
            assert abs(c.mean()) < 0.05 * sigma, name
        assert abs(np.corrcoef(comps["across"], comps["along"])[0, 1]) < 0.03
        dyaw = (rows[:, 3] - flight[base, 3] + 180.0) % 360.0 - 180.0
        for name, delta, sigma in (("yaw", dyaw, 15.0), ("pitch", rows[:, 4] - flight[base, 4], 5.0),
                                   ("roll", rows[:, 5] - flight[base, 5], 3.0)):
            assert abs(delta.std() - sigma) < 0.03 * sigma, name
            assert abs(delta.mean()) < 0.05 * sigma, name

    def test_ranges_and_base_rows(self, sample):
        flight, rows, base = sample
        assert rows.shape == (20_000, 6) and rows.dtype == np.float64
        assert np.all((rows[:, 3] >= -180) & (rows[:, 3] < 180))
        assert np.all((rows[:, 4] >= -90) & (rows[:, 4] <= 0))
        # even pick: every one of the 447 rows is the base of 44 or 45 views
        counts = np.bincount(base, minlength=len(flight))
        assert counts.min() == 20_000 // 447 and counts.max() == 20_000 // 447 + 1

    def test_pitch_stays_in_range_near_nadir_and_horizon(self):
        winter = load_preset("comballaz-2021-03-27-winter")  # pitch -89.9 .. 0
        rows = corridor(winter, 5000, sigma_deg=(10.0, 20.0, 5.0), seed=1)
        assert np.all((rows[:, 4] >= -90.0) & (rows[:, 4] <= 0.0))

    @pytest.mark.parametrize("pitch, band", [(-88.0, (-90.0, -88.0)), (-2.0, (-2.0, 0.0))])
    def test_pitch_is_reflected_at_the_bounds(self, pitch, band):
        # N(pitch, 10) reflected at the bound 2 deg away: the 2 deg next to the bound hold
        # P(|Z| < 0.2) + ... = P(-0.4 < Z < 0) = 0.1554 (clipping would put 42 % on the bound itself)
        norm = pytest.importorskip("scipy.stats").norm
        flight = rows_at([[0.0, 0.0, 200.0]] * 2, (0.0, pitch, 0.0))
        rows = corridor(flight, 20_000, sigma_m=(0, 0, 0), sigma_deg=(0.0, 10.0, 0.0), seed=5)
        expect = norm.cdf(0.0) - norm.cdf(-0.4)
        share = np.mean((rows[:, 4] >= band[0]) & (rows[:, 4] <= band[1]))
        assert abs(share - expect) < 0.01
        assert np.mean(rows[:, 4] == np.clip(pitch, -90, 0)) < 0.001

    def test_fold_and_wrap_by_hand(self):
        np.testing.assert_allclose(fold_pitch_deg([-95.0, 4.0, -30.0, 0.0, -90.0, -185.0, 100.0]),
                                   [-85.0, -4.0, -30.0, 0.0, -90.0, -5.0, -80.0])
        np.testing.assert_allclose(wrap_deg([180.0, -180.0, 190.0, -181.0, 720.0]),
                                   [-180.0, -180.0, -170.0, 179.0, 0.0])
        # a hair below -180: np.mod's remainder rounds up to 360, which gave 180.0, outside [-180, 180)
        assert wrap_deg(-180.00000000000003) == -180.0 and wrap_deg([-180.00000000000003])[0] == -180.0

    def test_travel_direction_not_heading(self):
        # flying north at the origin while facing east (crabbing): along-track is north
        flight = rows_at([[0.0, 0.0, 200.0], [0.0, 30.0, 200.0], [0.0, 60.0, 200.0]], (90.0, -60.0, 0.0))
        rows, base = corridor(flight, 300, sigma_m=(0.0, 5.0, 0.0), sigma_deg=(0, 0, 0), seed=0, return_base=True)
        off = enu(rows) - enu(flight)[base]
        assert off[:, 1].std() > 4.0
        np.testing.assert_allclose(off[:, [0, 2]], 0.0, atol=2e-3)

    def test_hovering_falls_back_to_heading(self):
        flight = rows_at([[0.0, 0.0, 200.0]] * 3, (90.0, -60.0, 0.0))  # hovering, facing east
        rows = corridor(flight, 300, sigma_m=(0.0, 5.0, 0.0), sigma_deg=(0, 0, 0), seed=0)
        off = enu(rows) - enu(flight)[:1]
        assert off[:, 0].std() > 4.0
        np.testing.assert_allclose(off[:, 1:], 0.0, atol=2e-3)
        across = corridor(flight, 300, sigma_m=(5.0, 0.0, 0.0), sigma_deg=(0, 0, 0), seed=0)
        off = enu(across) - enu(flight)[:1]
        assert off[:, 1].std() > 4.0  # across a heading east is north-south
        np.testing.assert_allclose(off[:, [0, 2]], 0.0, atol=2e-3)

    @pytest.mark.parametrize("track_enu, right_enu", [
        ([[0.0, 0.0, 200.0], [30.0, 0.0, 200.0], [60.0, 0.0, 200.0]], [0.0, -1.0, 0.0]),  # east: right is south
        ([[0.0, 0.0, 200.0], [0.0, 30.0, 200.0], [0.0, 60.0, 200.0]], [1.0, 0.0, 0.0]),  # north: right is east
        ([[0.0, 0.0, 200.0], [-30.0, -30.0, 200.0], [-60.0, -60.0, 200.0]], [-0.5**0.5, 0.5**0.5, 0.0]),  # SW: NW
    ])
    def test_positive_across_offsets_lie_to_the_right_of_travel(self, track_enu, right_enu):
        # A symmetric Gaussian hides the sign of the across axis: only the draws show it. The seed
        # is documented as that of a numpy Generator; with pick="even" the views' first draws are
        # the (n, 3) standard normals (across, along, up), so view k moves 5 * z[k, 0] metres to
        # the right of travel (docstring: across is 90 deg to the right of the direction of travel).
        flight = rows_at(track_enu, (0.0, -60.0, 0.0))
        rows, base = corridor(flight, 30, sigma_m=(5.0, 0.0, 0.0), sigma_deg=(0, 0, 0), seed=4, return_base=True)
        z = np.random.default_rng(4).standard_normal((30, 3))
        off = enu(rows) - enu(flight)[base]
        np.testing.assert_allclose(off, 5.0 * z[:, :1] * np.asarray(right_enu), atol=2e-3)

    def test_deterministic_for_a_seed(self):
        flight = load_preset(PLANNED)
        a, b = corridor(flight, 50, seed=7), corridor(flight, 50, seed=7)
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, corridor(flight, 50, seed=8))
        r1, base1 = corridor(flight, 50, seed=7, pick="random", return_base=True)
        r2, base2 = corridor(flight, 50, seed=7, pick="random", return_base=True)
        np.testing.assert_array_equal(r1, r2)
        assert len(np.unique(base1)) > 30

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"flight_rows": np.zeros((3, 5))}, "flight_rows: expected pose rows of shape"),
            ({"flight_rows": np.zeros((0, 6))}, "flight_rows: expected at least one"),
            ({"flight_rows": np.zeros((2, 6))}, "flight_rows: rows .* from the WGS84 ellipsoid"),
            ({"n": 0}, "n: expected an int >= 1"),
            ({"n": 2.5}, "n: expected an int >= 1"),
            ({"sigma_m": (1.0, -1.0, 1.0)}, "sigma_m: expected three non-negative"),
            ({"sigma_m": (1.0, 1.0)}, "sigma_m: expected three non-negative"),
            ({"sigma_deg": (1.0, float("nan"), 1.0)}, "sigma_deg: expected three non-negative"),
            ({"seed": -1}, "seed: expected a non-negative int"),
            ({"pick": "first"}, "pick: expected 'even' or 'random'"),
        ],
    )
    def test_bad_arguments_name_themselves(self, kwargs, match):
        args = {"flight_rows": load_preset(PLANNED)[:5], "n": 4, **kwargs}
        with pytest.raises(ValueError, match=match):
            corridor(**args)


# ------------------------------------------------------------------------------------------ LHS
def test_corridor_doubts_rows_that_are_not_a_flight_path():
    # the LHS set: unrelated poses 592 m apart at the median (worked out here with numpy); its "along track" is the
    # direction to the next random pose, so unequal across / along sigmas went in arbitrary directions silently
    import warnings

    lhs = load_preset("comballaz-LHS")[:200]
    step = np.median(np.linalg.norm(np.diff(lhs[:, :3], axis=0), axis=1))
    assert step > 100.0
    with pytest.warns(UserWarning, match=rf"^flight_rows: consecutive rows are {step:.0f} m apart at the median: "
                                         r"not a flight path\? .* \(30 m, 5 m\) point in arbitrary directions"):
        corridor(lhs, 10, sigma_m=(30.0, 5.0, 1.0), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        corridor(lhs, 10, sigma_m=(15.0, 15.0, 8.0), seed=0)  # isotropic: the axes do not matter
        corridor(load_preset("comballaz-2020-11-06-planned"), 10, sigma_m=(30.0, 5.0, 1.0), seed=0)  # 31 m apart


def test_latin_hypercube_strata_and_discrepancy_like_scipy():
    qmc = pytest.importorskip("scipy.stats.qmc")
    u = latin_hypercube(97, 5, seed=0)
    assert u.shape == (97, 5) and np.all((u >= 0) & (u < 1))
    for j in range(5):
        assert one_per_stratum(u[:, j], 0.0, 1.0, 97)
    ours = np.mean([qmc.discrepancy(latin_hypercube(64, 6, seed=s)) for s in range(30)])
    ref = np.mean([qmc.discrepancy(qmc.LatinHypercube(d=6, seed=s).random(64)) for s in range(30)])
    assert abs(ours - ref) < 0.1 * ref
    np.testing.assert_array_equal(latin_hypercube(10, 2, seed=4), latin_hypercube(10, 2, seed=4))
    assert not np.allclose(latin_hypercube(10, 2, seed=4), latin_hypercube(10, 2, seed=5))


def test_lhs_envelope_inside_the_flight_envelope_one_per_stratum():
    flight = load_preset(PLANNED)
    n, margin = 200, 40.0
    rows = lhs_envelope(flight, n, seed=2, margin_m=margin, frame=LocalFrame(*ORIGIN))
    p, q = enu(flight), enu(rows)
    bands = {
        "east": (q[:, 0], p[:, 0].min() - margin, p[:, 0].max() + margin),
        "north": (q[:, 1], p[:, 1].min() - margin, p[:, 1].max() + margin),
        "up": (q[:, 2], p[:, 2].min(), p[:, 2].max()),
        "pitch": (rows[:, 4], flight[:, 4].min(), flight[:, 4].max()),
        "roll": (rows[:, 5], flight[:, 5].min(), flight[:, 5].max()),
        "yaw": (rows[:, 3], -180.0, 180.0),  # the lawnmower's 4 headings, 90 deg apart: every heading
    }
    for name, (v, lo, hi) in bands.items():
        assert np.all((v >= lo - 1e-6) & (v <= hi + 1e-6)), name
        assert one_per_stratum(v, lo, hi, n), name
    np.testing.assert_array_equal(rows, lhs_envelope(flight, n, seed=2, margin_m=margin, frame=LocalFrame(*ORIGIN)))
    assert not np.allclose(rows, lhs_envelope(flight, n, seed=3, margin_m=margin, frame=LocalFrame(*ORIGIN)))


def test_lhs_envelope_heading_arc_across_the_wrap():
    flight = rows_at([[0.0, 0.0, 200.0], [50.0, 0.0, 220.0], [0.0, 80.0, 210.0]], (0.0, -60.0, 0.0))
    flight[:, 3] = [170.0, -170.0, 175.0]  # headings 170 .. 190 deg: a 20 deg arc over the wrap
    rows = lhs_envelope(flight, 100, seed=0, margin_m=0.0)
    unwrapped = np.mod(rows[:, 3] - 170.0, 360.0)
    assert np.all(unwrapped < 20.0 + 1e-9)
    assert one_per_stratum(unwrapped, 0.0, 20.0, 100)
    assert np.all((rows[:, 3] >= -180) & (rows[:, 3] < 180))
    np.testing.assert_allclose(rows[:, 4], -60.0)  # a one-value band stays that value


def test_lhs_area_matches_topo_datagen_ranges():
    n = 300
    rows = lhs_area("comballaz", n, seed=0)
    q = enu(rows)
    preset = load_preset("comballaz-LHS")  # TOPO-DataGen's own LHS: the ranges must be its ranges
    pq = enu(preset)
    a = LHS_AREAS["comballaz"]
    for name, v, (lo, hi), ref in (("east", q[:, 0], a.east_m, pq[:, 0]), ("north", q[:, 1], a.north_m, pq[:, 1]),
                                   ("up", q[:, 2], a.up_m, pq[:, 2]), ("pitch", rows[:, 4], a.pitch_deg, preset[:, 4]),
                                   ("roll", rows[:, 5], a.roll_deg, preset[:, 5])):
        assert np.all((v >= lo - 1e-6) & (v <= hi + 1e-6)), name
        assert one_per_stratum(v, lo, hi, n), name
        assert abs(ref.min() - lo) < 0.01 * (hi - lo) and abs(ref.max() - hi) < 0.01 * (hi - lo), name
    assert one_per_stratum(rows[:, 3], -180.0, 180.0, n)
    assert (-90.0, -45.0) == a.pitch_deg and (-15.0, 15.0) == a.roll_deg
    # with a terrain (here a plane 50 m up), heights are 100-200 m above it
    flat = lhs_area("comballaz", n, seed=0, ground_m=lambda e, nn: np.full(np.shape(e), 50.0))
    assert one_per_stratum(enu(flat)[:, 2], 150.0, 250.0, n)
    np.testing.assert_array_equal(rows, lhs_area("comballaz", n, seed=0))
    assert not np.allclose(rows, lhs_area("comballaz", n, seed=1))
    with pytest.raises(ValueError, match="area: expected one of"):
        lhs_area("epfl", 10)


# ----------------------------------------------------------------------------------- pose files
def test_pose_file_round_trip(tmp_path):
    rows = corridor(load_preset(PLANNED), 25, seed=0)
    path = save_pose_file(tmp_path / "sub" / "corridor", rows)
    assert path.name == "corridor.npy"
    raw = np.load(path, allow_pickle=False)  # what TOPO-DataGen reads: a plain float64 (N, 6) array
    assert raw.dtype == np.float64 and raw.shape == (25, 6)
    np.testing.assert_array_equal(raw, rows)
    np.testing.assert_array_equal(load_pose_file(path), rows)
    np.save(tmp_path / "bad.npy", np.zeros((4, 7)))
    with pytest.raises(ValueError, match=r"bad\.npy: expected a numeric array of shape \(N, 6\)"):
        load_pose_file(tmp_path / "bad.npy")
    with pytest.raises(ValueError, match="rows: expected pose rows of shape"):
        save_pose_file(tmp_path / "x.npy", np.zeros((3, 3)))


def test_a_pose_file_write_that_fails_leaves_the_previous_file(tmp_path, monkeypatch):
    # np.save wrote into the pose file itself: a write killed or failed half-way destroyed the previous one
    rows = corridor(load_preset(PLANNED), 5, seed=0)
    path = save_pose_file(tmp_path / "poses.npy", rows)

    def broken_save(f, *args, **kwargs):
        f.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_pose_file(path, rows[:2])
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(path, allow_pickle=False), rows)
    assert [p.name for p in tmp_path.iterdir()] == ["poses.npy"]


def test_a_pose_file_path_that_is_a_folder_is_refused_naming_it(tmp_path):
    rows = corridor(load_preset(PLANNED), 3, seed=0)
    (tmp_path / "poses").mkdir()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for bad, want in [(tmp_path / "poses", f"got '{tmp_path / 'poses'}', a folder"),
                      (f"{tmp_path / 'new'}/", f"got '{tmp_path / 'new'}/', a folder"),
                      (".", "got '.', a folder"), ("", "got an empty path"),
                      (blocker / "x.npy", f"'{blocker}' above '{blocker / 'x.npy'}' is a file")]:
        with pytest.raises(ValueError, match="^path: expected a .npy file path") as info:
            save_pose_file(bad, rows)
        assert want in str(info.value)
    (tmp_path / "taken.npy").mkdir()  # the name numpy would write is a folder
    with pytest.raises(ValueError, match="taken.npy' .from '.*taken'. is a folder"):
        save_pose_file(tmp_path / "taken", rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "poses", "taken.npy"]  # nothing written beside
    # '.npy' is appended to any other name, as numpy's np.save does
    assert pose_file_path(tmp_path / "a.txt") == tmp_path / "a.txt.npy"
    np.save(tmp_path / "b.txt", rows)
    assert save_pose_file(tmp_path / "a.txt", rows) == tmp_path / "a.txt.npy" and (tmp_path / "b.txt.npy").is_file()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"flight_rows": "rows.npy"}, r"flight_rows: expected pose rows of shape .* got the str 'rows\.npy'; .*"
                                      r"topoloc\.load_preset\('rows\.npy'\), a pose file's "
                                      r"topoloc\.data\.read_pose_file\(path\)"),
        ({"margin_m": "5"}, "margin_m: expected a margin in metres .* got '5'"),  # numpy's isfinite error
        ({"yaw_gap_deg": None}, "yaw_gap_deg: expected degrees in"),  # "'<=' not supported"
        ({"yaw_gap_deg": 400.0}, r"yaw_gap_deg: expected degrees in \[0, 360\]"),
        ({"clearance_m": "x", "ground_m": lambda e, n: 0 * e}, "clearance_m: expected a height"),
        ({"ground_m": 3}, "ground_m: expected None or a function"),  # "'int' object is not callable"
        ({"frame": "zermatt"}, "frame: unknown frame 'zermatt'"),  # a name was "'str' object has no attribute"
    ],
)
def test_lhs_envelope_arguments_name_themselves(kwargs, match):
    args = {"flight_rows": load_preset(PLANNED)[:5], "n": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        lhs_envelope(**args)


def test_lhs_envelope_takes_a_frame_by_name():
    rows = load_preset(PLANNED)
    by_name = lhs_envelope(rows, 6, frame="comballaz", seed=3)
    np.testing.assert_array_equal(by_name, lhs_envelope(rows, 6, frame=LocalFrame.named("comballaz"), seed=3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        # pitch 0..90 looked up, although every sampler promises pitch in [-90, 0]
        ({"pitch_deg": (0.0, 90.0)}, r"^LhsArea pitch_deg: expected finite \(min, max\) with min <= max within "
                                     r"\[-90, 0\], got \(0.0, 90.0\)$"),
        ({"east_m": (1.0, 0.0)}, r"^LhsArea east_m: expected finite \(min, max\) with min <= max, got \(1.0, 0.0\)$"),
        ({"north_m": "0,1"}, r"^LhsArea north_m: expected \(min, max\), got '0,1'$"),  # "unsupported operand"
        ({"up_m": (0.0, float("nan"))}, "^LhsArea up_m: expected finite"),
        ({"above_ground_m": (-10.0, 50.0)}, r"^LhsArea above_ground_m: .* within \[0, inf\]"),
        ({"roll_deg": (-200.0, 0.0)}, r"^LhsArea roll_deg: .* within \[-180, 180\]"),
        ({"yaw_deg": (-180.0, 270.0)}, r"^LhsArea yaw_deg: expected an arc \(start, end\) at most 360 deg wide"),
        ({"origin": "mars"}, r"^LhsArea origin: expected one of \['comballaz', 'epfl'\], got 'mars'$"),
    ],
)
def test_an_lhs_area_refuses_bad_bands_naming_the_field(kwargs, match):
    args = {"origin": "comballaz", "east_m": (0, 1), "north_m": (0, 1), "up_m": (100, 200),
            "above_ground_m": (100, 200), **kwargs}
    with pytest.raises(ValueError, match=match):
        LhsArea(**args)


def test_an_lhs_area_keeps_its_bands_as_floats_and_samples_within_them():
    area = LhsArea("EPFL", (0, 10), (5, 6), [100, 200], (0, 50), yaw_deg=(170, 190), pitch_deg=(-80, -70))
    assert area.east_m == (0.0, 10.0) and area.up_m == (100.0, 200.0) and isinstance(area.east_m[0], float)
    rows = lhs_area(area, 50, seed=0)
    assert np.all((rows[:, 4] >= -80.0) & (rows[:, 4] <= -70.0))
    assert np.all(np.mod(rows[:, 3] - 170.0, 360.0) <= 20.0 + 1e-9)  # an arc across the wrap stays an arc


def test_corridor_return_base_must_be_a_bool():
    rows = load_preset(PLANNED)[:5]
    # "no" is a truthy string: it returned the (rows, base) pair
    with pytest.raises(TypeError, match="^return_base: expected True or False, got str 'no'$"):
        corridor(rows, 5, return_base="no")
    assert isinstance(corridor(rows, 5, return_base=np.bool_(False)), np.ndarray)


def test_pose_summary_takes_a_frame_by_name():
    rows = load_preset(PLANNED)
    # a name was "'str' object has no attribute 'ecef_to_enu'"
    assert pose_summary(rows, frame="comballaz") == pose_summary(rows, frame=LocalFrame(*ORIGIN))
    assert "frame lat 46.3705 lon 7.0650 h 1410 m" in pose_summary(rows, frame="comballaz")
    with pytest.raises(ValueError, match="^frame: unknown frame 'zermatt'"):
        pose_summary(rows, frame="zermatt")


# --------------------------------------------------------- what mutation testing showed unpinned
@pytest.mark.parametrize("h_m, refused", [(-5_000.0, True), (-500.0, False), (150_000.0, True), (90_000.0, False)])
def test_rows_far_from_the_ellipsoid_are_refused(h_m, refused):
    # The documented band of believable camera heights is -1 km .. 100 km above the WGS84 ellipsoid;
    # the rows are placed with pyproj (geodetic -> ECEF), independently of topoloc.geodesy.
    x, y, z = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True).transform(7.065, 46.3705, h_m)
    rows = np.array([[x, y, z, 0.0, -60.0, 0.0]])
    if refused:
        with pytest.raises(ValueError, match=r"flight_rows: rows \[0\] lie .* from the WGS84 ellipsoid"):
            corridor(rows, 2)
    else:
        assert corridor(rows, 2, sigma_m=(0, 0, 0)).shape == (2, 6)


@pytest.mark.parametrize("kwargs, match", [
    ({"margin_m": -0.5}, "margin_m: expected a margin in metres"),  # a margin of -0.5 m shrinks the box
    ({"margin_m": True}, "margin_m: expected a margin in metres"),  # a bool is not a number of metres
    ({"clearance_m": -0.5, "ground_m": lambda e, n: 0 * e}, "clearance_m: expected a height"),
])
def test_lhs_envelope_refuses_negative_and_bool_numbers(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lhs_envelope(load_preset(PLANNED)[:5], 4, **kwargs)


def test_a_one_value_band_is_an_lhs_area_band_and_a_string_is_not():
    # min <= max is the documented rule: (-60, -60) is a band of one value, every pitch -60
    area = LhsArea("comballaz", (0, 10), (0, 10), (100, 200), (0, 50), pitch_deg=(-60, -60))
    np.testing.assert_array_equal(lhs_area(area, 5, seed=0)[:, 4], -60.0)
    with pytest.raises(ValueError, match=r"^LhsArea east_m: expected \(min, max\), got '01'$"):  # not (0, 1)
        LhsArea("comballaz", "01", (0, 10), (100, 200), (0, 50))


def test_random_pick_reaches_the_last_row():
    # rows drawn uniformly from all N rows: with N = 2 and 200 draws each row is the base of about
    # 100 views (binomial, sd 7); never picking the last row has probability 2^-200
    flight = rows_at([[0.0, 0.0, 200.0], [0.0, 30.0, 200.0]], (0.0, -60.0, 0.0))
    _, base = corridor(flight, 200, seed=0, pick="random", return_base=True)
    assert 60 < np.sum(base == 1) < 140 and 60 < np.sum(base == 0) < 140


def test_roll_is_wrapped_to_the_documented_range():
    # roll 178 deg + N(0, 5): about 34 % of the draws pass 180 and must come back as -180 + (r - 180)
    flight = rows_at([[0.0, 0.0, 200.0]] * 2, (0.0, -60.0, 178.0))
    rows = corridor(flight, 2000, sigma_m=(0, 0, 0), sigma_deg=(0.0, 0.0, 5.0), seed=0)
    assert np.all((rows[:, 5] >= -180.0) & (rows[:, 5] < 180.0))
    assert 0.25 < np.mean(rows[:, 5] < 0) < 0.45  # P(Z > 2 / 5) = 0.345
    unwrapped = np.mod(rows[:, 5] - 178.0 + 180.0, 360.0) - 180.0
    assert abs(unwrapped.std() - 5.0) < 0.3


def test_headings_exactly_yaw_gap_apart_count_as_every_heading():
    # docstring: "all headings when no gap between the flight's headings is wider than yaw_gap_deg":
    # headings 0, 90, 180, 270 have four gaps of exactly 90 deg, none wider than 90
    track = [[0.0, 0.0, 200.0], [50.0, 0.0, 210.0], [0.0, 50.0, 220.0], [50.0, 50.0, 230.0]]
    flight = rows_at(track, (0.0, -60.0, 0.0))
    flight[:, 3] = [0.0, 90.0, 180.0, -90.0]
    rows = lhs_envelope(flight, 80, seed=0, yaw_gap_deg=90.0)
    assert one_per_stratum(rows[:, 3], -180.0, 180.0, 80)
    # with an 89 deg limit the widest gap (90) is an open side: an arc 360 - 90 = 270 deg wide
    # (one of the four 90 deg gaps stays empty)
    y = np.sort(np.mod(lhs_envelope(flight, 80, seed=0, yaw_gap_deg=89.0)[:, 3], 360.0))
    assert np.diff(np.r_[y, y[0] + 360.0]).max() >= 90.0 - 1e-9


class TestLhsEnvelopeOverTerrain:
    """Heights over a terrain: drawn in [max(band_min, ground + clearance), band_max], or at ground + clearance."""

    # a flight between ENU up 200 and 220 m (pyproj places it), the box computed in the Comballaz frame
    FLIGHT_ENU = [[0.0, 0.0, 200.0], [60.0, 0.0, 210.0], [0.0, 80.0, 220.0]]

    def _rows(self, ground_up_m, clearance_m=10.0, n=100):
        flight = rows_at(self.FLIGHT_ENU, (0.0, -60.0, 0.0))
        return enu(lhs_envelope(flight, n, seed=1, frame="comballaz", clearance_m=clearance_m,
                                ground_m=lambda e, nn: np.full(np.shape(e), ground_up_m)))

    def test_terrain_far_below_keeps_the_flight_band(self):
        # ground at 0 m + 10 m clearance = 10 m, below the band's 200 m: the band is 200..220 m
        up = self._rows(0.0)[:, 2]
        assert one_per_stratum(up, 200.0, 220.0, 100)

    def test_terrain_inside_the_band_raises_its_floor(self):
        # ground 195 m + 10 m clearance = 205 m: heights in 205..220 m, one per stratum
        up = self._rows(195.0)[:, 2]
        assert one_per_stratum(up, 205.0, 220.0, 100)

    def test_terrain_above_the_band_puts_every_camera_at_the_clearance(self):
        # ground 215 m + 10 m clearance = 225 m > 220 m: no room left, every camera at 225 m
        np.testing.assert_allclose(self._rows(215.0)[:, 2], 225.0, atol=1e-3)

    def test_a_terrain_returning_nan_is_refused(self):
        flight = rows_at(self.FLIGHT_ENU, (0.0, -60.0, 0.0))
        with pytest.raises(ValueError, match="ground_m: expected a function .* finite heights"):
            lhs_envelope(flight, 5, ground_m=lambda e, nn: np.full(np.shape(e), np.nan))


def test_lhs_envelope_pitch_band_is_clipped_to_minus_90_0():
    # a flight holding a pitch of +5 deg (looking up): the sampled band is -10 .. 0, not -10 .. 5
    flight = rows_at([[0.0, 0.0, 200.0], [50.0, 0.0, 210.0]], (0.0, -60.0, 0.0))
    flight[:, 4] = [-10.0, 5.0]
    rows = lhs_envelope(flight, 50, seed=0)
    assert one_per_stratum(rows[:, 4], -10.0, 0.0, 50)


def test_lhs_dimensions_are_independent():
    # McKay et al.: an independent permutation per dimension. Pitch and roll of 400 draws are then
    # uncorrelated (|r| ~ 1 / sqrt(400) = 0.05); one shared column would make them r = 1.
    rows = lhs_area("comballaz", 400, seed=0)
    assert abs(np.corrcoef(rows[:, 4], rows[:, 5])[0, 1]) < 0.2
    q = enu(rows)
    assert abs(np.corrcoef(q[:, 0], q[:, 1])[0, 1]) < 0.2  # east and north too


def test_latin_hypercube_draws_uniformly_within_each_stratum():
    # (permutation + uniform) / n: the position inside its stratum is U(0, 1), not the centre 0.5
    kstest = pytest.importorskip("scipy.stats").kstest
    u = latin_hypercube(500, 2, seed=0)
    within = u * 500 - np.floor(u * 500)
    assert kstest(within.ravel(), "uniform").pvalue > 1e-3


def test_lhs_envelope_default_frame_is_at_the_mean_geodetic_position():
    # the mean ECEF position to latitude, longitude, height with pyproj: the default frame
    flight = load_preset(PLANNED)
    lon, lat, h = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True).transform(*flight[:, :3].mean(0))
    np.testing.assert_allclose(lhs_envelope(flight, 20, seed=0),
                               lhs_envelope(flight, 20, seed=0, frame=LocalFrame(lat, lon, h)), rtol=0, atol=1e-4)


def test_pose_summary_values_by_hand():
    # ENU (0, 0, 200), (100, 50, 210), (300, -40, 250): extent 300 m east x 90 m north, up 200..250 m
    rows = rows_at([[0.0, 0.0, 200.0], [100.0, 50.0, 210.0], [300.0, -40.0, 250.0]], (0.0, -60.0, 0.0))
    rows[:, 4] = [-60.0, -30.0, -45.0]
    assert pose_summary(rows, frame="comballaz") == (
        "3 poses; ENU extent 300 m east x 90 m north, up 200..250 m (frame lat 46.3705 lon 7.0650 h 1410 m); "
        "pitch -60.0..-30.0 deg")


def test_non_finite_rows_and_an_area_of_another_type_are_refused_by_name():
    rows = load_preset(PLANNED)[:3].copy()
    rows[1, 0] = np.nan  # ecef_to_wgs84 gives NaN heights, which no height test refuses
    with pytest.raises(ValueError, match=r"^flight_rows: expected finite numbers, rows \[1\] hold NaN or inf$"):
        corridor(rows, 2)
    with pytest.raises(ValueError, match="^area: expected an area name or an LhsArea, got int$"):
        lhs_area(5, 10)


def test_pose_summary_prints_no_negative_zero():
    # a corridor's pitch folded at the horizon (-0.04 deg) was printed "pitch -0.0..-0.0 deg"
    rows = load_preset(PLANNED)[:3].copy()
    rows[:, 4] = [-0.04, -0.0, -0.03]
    assert pose_summary(rows, frame="comballaz").endswith("; pitch 0.0..0.0 deg")
