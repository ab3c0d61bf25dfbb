"""Mini-Comballaz renderer, writer and CLI wiring against independent references (hand-worked values,
formulas written here, documented facts): gaps found by mutation testing."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import topoloc.procedural.renderer as renderer_module
from topoloc.cli import main
from topoloc.data.semantics import CLOUD, REAL_ONLY, RIDGELINE, SKY
from topoloc.geodesy import LocalFrame
from topoloc.procedural import appearance_for_flight, bake, cast_rays, render, render_flights
from topoloc.procedural.renderer import camera_rays

SIZE = (72, 48)
ALT_FLIGHT = "comballaz-2020-11-06-planned"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("gaps")
    render_flights(root, f"comballaz-LHS:3,{ALT_FLIGHT}:2", size=SIZE, seed=0, batch_size=2, progress=False, depth=True,
                   domains=("synthetic", "real", "real_alt"))
    return root


# --- writer ----------------------------------------------------------------------------------------------------------

def test_each_written_depth_is_the_ground_seen_from_its_own_pose_row(written, world):
    """Image i's depth, unprojected through pose row i (pinhole rays written here), lies on the terrain surface."""
    flight = "comballaz-LHS"
    folder = written / flight
    rows = np.load(folder / f"{flight}_poses.npy")
    frame = LocalFrame.named("comballaz")
    W, H = SIZE
    f = 480.0 * W / 720.0
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    cam = np.stack([(u - W / 2) / f, (v - H / 2) / f, np.ones_like(u)], -1)
    g = world.grid
    surf = world.surface.double().numpy()
    files = sorted(folder.glob(f"{flight}_*_depth.npy"))
    assert len(files) == 3
    for p in files:
        i = int(p.name.split("_")[1])
        depth = np.load(p).astype(np.float64)
        c2w = frame.cesium_to_c2w(rows[i : i + 1])[0]
        pts = c2w[:3, 3] + depth[..., None] * (cam @ c2w[:3, :3].T)
        # bilinear terrain height at the points (grid: e = e_min + j * cell, n = n_min + k * cell)
        x = (pts[..., 0] - g.e_min) / g.cell
        y = (pts[..., 1] - g.n_min) / g.cell
        j0, k0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = x - j0, y - k0
        z = (surf[k0, j0] * (1 - fx) * (1 - fy) + surf[k0, j0 + 1] * fx * (1 - fy)
             + surf[k0 + 1, j0] * (1 - fx) * fy + surf[k0 + 1, j0 + 1] * fx * fy)
        err = np.abs(pts[..., 2] - z)
        assert np.median(err) < 0.5, (p.name, np.median(err))


def test_manifest_focal_is_topo_s_scaled_to_the_width(written):
    meta = json.loads((written / "mini_comballaz.json").read_text())
    assert meta["focal_px"] == pytest.approx(480.0 * 72 / 720.0) == 48.0
    assert (meta["width"], meta["height"]) == SIZE


def test_png_alpha_is_opaque(written):
    for p in sorted(written.rglob("*_img.png")):
        a = np.asarray(Image.open(p))
        assert a.shape[-1] == 4
        assert (a[..., 3] == 255).all(), p.name


# IJG (libjpeg) standard luminance quantisation table, ITU-T T.81 Annex K.1, and its quality scaling.
_IJG_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
             14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
             49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]


def _ijg_table(q: int) -> list[int]:
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return sorted(min(255, max(1, (b * scale + 50) // 100)) for b in _IJG_LUMA)


@pytest.mark.parametrize("suffix, lo, hi", [("-real", 75, 95), ("-real-alt", 52, 64)])
def test_jpeg_quality_is_within_the_documented_range(written, suffix, lo, hi):
    jpgs = sorted((written / f"{ALT_FLIGHT}{suffix}").glob("*.JPG"))
    assert jpgs
    allowed = {tuple(_ijg_table(q)) for q in range(lo, hi + 1)}
    for p in jpgs:
        luma = tuple(sorted(Image.open(p).quantization[0]))
        assert luma in allowed, (p.name, luma[:4])


# --- renderer --------------------------------------------------------------------------------------------------------

def test_camera_rays_pass_through_pixel_centres():
    W, H = 8, 6
    f = 480.0 * W / 720.0
    _, d = camera_rays(torch.eye(4)[None], W, H)
    for v, u in [(0, 0), (5, 7), (2, 3)]:
        expected = [(u + 0.5 - W / 2) / f, (v + 0.5 - H / 2) / f, 1.0]
        np.testing.assert_allclose(d[0, v, u].numpy(), expected, rtol=1e-6, atol=1e-7)


def test_ray_dist_is_the_euclidean_distance_to_a_plane_below(flat_world, c2w_from):
    W, H, h = 24, 16, 120.0
    f = 480.0 * W / 720.0
    world = flat_world(0.0)
    geom = cast_rays(world, c2w_from(0.0, 0.0, h, 0.0, -90.0), W, H)
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    expected = h * np.sqrt(1 + ((u - W / 2) / f) ** 2 + ((v - H / 2) / f) ** 2)  # looking straight down
    np.testing.assert_allclose(geom.ray_dist[0].double().numpy(), expected, rtol=2e-3)
    np.testing.assert_allclose(geom.depth[0].double().numpy(), h, rtol=2e-3)


def _fake_shade(values):
    def fake(world, bake_, geom, keys, width, height, origins, c2w=None):
        B = keys.shape[0]
        rgb = values.to(torch.float32).expand(B, 3, height, width).clone()
        return rgb, torch.zeros(B, height, width, dtype=torch.uint8)
    return fake


def test_uint8_output_rounds_255_times_the_clamped_shade(flat_world, c2w_from, monkeypatch):
    W, H = 8, 6
    vals = torch.tensor([0.11, 0.502, 0.9999, 1.5, -0.2, 0.002, 0.998, 0.301])  # 255 x far from .5 ties
    vals = vals[torch.arange(W) % len(vals)]
    shade_map = vals[None, None, None, :].expand(1, 3, H, W)
    monkeypatch.setattr(renderer_module, "shade", _fake_shade(shade_map))
    out = render(flat_world(0.0), {"synthetic": None}, c2w_from(0.0, 0.0, 100.0, 0.0, -90.0),
                 {"synthetic": torch.tensor([1])}, W, H)
    expected = np.round(255.0 * np.clip(vals.double().numpy(), 0, 1)).astype(np.uint8)
    # by hand: 28.05, 128.01, 254.97, 255, 0, 0.51, 254.49, 76.755
    assert expected.tolist() == [28, 128, 255, 255, 0, 1, 254, 77]
    np.testing.assert_array_equal(out["synthetic"][0][0, 0, 0].numpy(), expected)


def test_real_camera_vignettes_the_real_domain(flat_world, c2w_from, monkeypatch):
    W, H = 48, 32
    monkeypatch.setattr(renderer_module, "shade", _fake_shade(torch.full((1, 3, 1, 1), 0.5)))
    args = (flat_world(0.0), {"real": None}, c2w_from(0.0, 0.0, 100.0, 0.0, -90.0), {"real": torch.tensor([7])}, W, H)
    plain = render(*args, real_camera=False)["real"][0][0].float().numpy()
    cam = render(*args, real_camera=True)["real"][0][0].float().numpy()
    assert (plain == 128).all()  # round(127.5 + 0.5): no camera, the shade as it is
    assert not np.array_equal(cam, plain)
    centre = cam[:, H // 2 - 3 : H // 2 + 3, W // 2 - 3 : W // 2 + 3].mean()
    corners = np.mean([cam[:, :4, :4].mean(), cam[:, :4, -4:].mean(), cam[:, -4:, :4].mean(), cam[:, -4:, -4:].mean()])
    assert corners < centre - 2.0, (corners, centre)


def test_far_ridge_is_found_by_compass_azimuth(flat_world, c2w_from):
    """A ridge 10 deg high only towards the east (azimuth 45-135 deg clockwise from north, index k at
    k * 360 / 64 deg)."""
    world = flat_world(0.0)
    ridge = torch.full((64,), -90.0)
    ridge[8:25] = 10.0
    world.ridge_deg = ridge
    world.ridge_sin = torch.sin(torch.deg2rad(ridge))
    W, H = 48, 32
    looks = {}
    for name, yaw in (("east", 90.0), ("north", 0.0)):
        geom = cast_rays(world, c2w_from(0.0, 0.0, 100.0, yaw, 0.0), W, H)
        d = geom.dirs[0].numpy()
        band = (d[..., 2] > 0.02) & (d[..., 2] < 0.12) & ~geom.hit[0].numpy()  # above the horizon, under sin(10 deg)
        assert band.sum() > 20
        looks[name] = (d[band], geom.far_class[0].numpy()[band])
    d_east, cls_east = looks["east"]
    d_north, cls_north = looks["north"]
    assert d_east[:, 0].min() > 0.7 and d_north[:, 1].min() > 0.7  # the yaw convention: really facing east / north
    assert (cls_east == RIDGELINE).all()
    assert (cls_north == SKY).all()


# --- appearance ------------------------------------------------------------------------------------------------------

def test_real_alt_has_no_clouds_where_real_is_overcast(flat_world, c2w_from):
    world = flat_world(0.0)
    world.clouds = torch.ones(16, 16)  # a cloud layer dense everywhere
    flight = ALT_FLIGHT
    bakes = {d: bake(world, appearance_for_flight(flight, d)) for d in ("real", "real_alt")}
    keys = {d: torch.tensor([3]) for d in bakes}
    out = render(world, bakes, c2w_from(0.0, 0.0, 100.0, 0.0, 15.0), keys, 48, 32, real_camera=False)
    real_sem, alt_sem = out["real"][1].numpy(), out["real_alt"][1].numpy()
    assert (real_sem == CLOUD).sum() > 50  # the check can see clouds
    assert not (alt_sem == CLOUD).any()
    assert (alt_sem == SKY).sum() > 50


def test_real_alt_bakes_cars_like_real(world):
    has = world.cars.numpy() > 0
    assert has.any()
    for domain in ("real", "real_alt"):
        b = bake(world, appearance_for_flight(ALT_FLIGHT, domain))
        assert (b.classes[0].numpy()[has] == REAL_ONLY).all(), domain
    syn = bake(world, appearance_for_flight(ALT_FLIGHT, "synthetic"))
    assert not (syn.classes[0].numpy()[has] == REAL_ONLY).any()


# --- CLI wiring ------------------------------------------------------------------------------------------------------

def test_cli_poses_corridor_seed_is_the_library_s(tmp_path, capsys):
    from topoloc.data.pose_sampling import corridor
    from topoloc.data.preset import load_preset

    out = tmp_path / "c.npy"
    assert main(["poses", "corridor", "--flight", "comballaz-LHS", "--count", "5", "--seed", "1",
                 "--out", str(out)]) == 0
    got = np.load(out)
    np.testing.assert_array_equal(got, corridor(load_preset("comballaz-LHS"), 5, seed=1))
    assert not np.array_equal(got, corridor(load_preset("comballaz-LHS"), 5, seed=0))


@pytest.fixture
def render_call(monkeypatch):
    import topoloc.procedural as procedural

    calls = []

    def fake(out_dir, flights, **kw):
        calls.append({**kw, "flights": flights})
        return {}

    monkeypatch.setattr(procedural, "render_flights", fake)
    return calls


def test_cli_render_defaults_are_the_documented_ones(tmp_path, render_call):
    from topoloc.procedural.clearance import MIN_CLEARANCE_M

    assert main(["render", "--out", str(tmp_path / "o"), "--flights", "comballaz-LHS:1"]) == 0
    kw = render_call[0]
    assert MIN_CLEARANCE_M == 2.0
    assert kw["min_clearance_m"] == MIN_CLEARANCE_M
    assert kw["size"] in ("360x240", (360, 240))  # the documented default (half TOPO's 720x480)
    assert kw["seed"] == 0


def test_cli_render_flags_reach_the_library(tmp_path, render_call):
    # no --flights and no --poses: the flights the help names (comballaz-LHS:400,comballaz-2020-11-06-planned:60)
    assert main(["render", "--out", str(tmp_path / "o")]) == 0
    assert [(f.name, f.count) for f in render_call[-1]["flights"]] == [("comballaz-LHS", 400),
                                                                        ("comballaz-2020-11-06-planned", 60)]
    assert render_call[-1]["depth"] is False
    assert main(["render", "--out", str(tmp_path / "o"), "--flights", "comballaz-LHS:1", "--depth"]) == 0
    assert render_call[-1]["depth"] is True


@pytest.mark.parametrize("argv, says", [
    (["--name", "comballaz-x"], "--poses and --name: expected both"),
    (["--min-clearance", "nan"], "--min-clearance: expected a non-negative number of metres, got nan"),
    (["--min-clearance", "-1"], "--min-clearance: expected a non-negative number of metres, got -1"),
])
def test_cli_render_refuses_by_flag(tmp_path, render_call, capsys, argv, says):
    with pytest.raises(SystemExit) as info:
        main(["render", "--out", str(tmp_path / "o"), *argv])
    assert info.value.code == 2 and says in capsys.readouterr().err
    assert render_call == []


def test_cli_render_seed_reaches_the_manifest(tmp_path):
    out = tmp_path / "o"
    assert main(["render", "--out", str(out), "--flights", "comballaz-LHS:1", "--size", "24x16", "--seed", "3",
                 "--no-progress", "--threads", "1"]) == 0
    meta = json.loads((out / "mini_comballaz.json").read_text())
    assert meta["seed"] == 3 and (meta["width"], meta["height"]) == (24, 16)


def test_cli_render_without_size_writes_360x240(tmp_path, monkeypatch):
    import topoloc.procedural as procedural

    real = procedural.render_flights

    def manifest_only(out_dir, flights, **kw):  # the manifest is written before any render; stop there
        from topoloc.procedural import writer

        monkeypatch.setattr(writer, "_render_jobs", lambda *a, **k: {})
        return real(out_dir, flights, **kw)

    monkeypatch.setattr(procedural, "render_flights", manifest_only)
    out = tmp_path / "o"
    assert main(["render", "--out", str(out), "--flights", "comballaz-LHS:1", "--no-progress"]) == 0
    meta = json.loads((out / "mini_comballaz.json").read_text())
    assert (meta["width"], meta["height"]) == (360, 240)
    assert meta["focal_px"] == 240.0


@pytest.mark.parametrize("flag, expected",
                         [(["--geoid-offset", "0"], 0.0), (["--geoid-offset", "-3.5"], -3.5), ([], 49.5)])
def test_cli_localise_geoid_offset_reaches_the_library(tmp_path, monkeypatch, flag, expected):
    import importlib

    # the module (the package re-exports the function)
    localise_module = importlib.import_module("topoloc.engine.localise")
    seen = {}

    class Stop(Exception):
        pass

    def fake(checkpoint, photos, **kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(localise_module, "localise", fake)
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"")
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"")
    with pytest.raises(Stop):
        main(["localise", "--checkpoint", str(ckpt), str(photo), "--out", str(tmp_path / "o.csv"), *flag])
    assert seen["geoid_offset_m"] == expected
    assert isinstance(seen["geoid_offset_m"], float)
