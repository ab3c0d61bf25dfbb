"""The second "real" appearance of Mini-Comballaz (``real_alt``): written only when asked, read by
TopoFlight, unlike both other looks, deterministic, and its semantics follow its lens."""

import numpy as np
import pytest
import torch

from topoloc.data import TopoFlight
from topoloc.data.preset import load_preset_pic_names
from topoloc.procedural import render_flights
from topoloc.procedural.alt_camera import ALT_CHROMATIC, ALT_K1, distortion_grid
from topoloc.procedural.appearance import appearance_for_flight
from topoloc.data.semantics import REAL_ONLY

SIZE = (96, 64)
FLIGHT = "comballaz-2020-11-06-planned"
WINTER = "comballaz-2021-03-27-winter"
DOMAINS = ("synthetic", "real", "real_alt")


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A default render first (no real_alt), then the same folder asked for real_alt too."""
    root = tmp_path_factory.mktemp("alt")
    render_flights(root, f"{FLIGHT}:4,{WINTER}:4", size=SIZE, seed=0, batch_size=3, progress=False)
    before = _files(root)
    done = render_flights(root, f"{FLIGHT}:4,{WINTER}:4", size=SIZE, seed=0, batch_size=3, progress=False,
                          domains=DOMAINS)
    return root, before, done


def _images(root, flight, domain):
    ds = TopoFlight(root, flight, domain=domain, load_semantics=True)
    return ds, torch.stack([ds[i]["image"] for i in range(len(ds))]).float() / 255.0


def test_written_only_when_asked_and_the_other_files_keep_their_bytes(rendered):
    root, before, done = rendered
    assert not any("real-alt" in name for name in before)
    assert done == {FLIGHT: 4, WINTER: 4}  # the rows missing their real_alt files were rendered again
    after = _files(root)
    assert {k: v for k, v in after.items() if k in before} == before
    names = load_preset_pic_names(FLIGHT)
    alt = sorted(k for k in after if k.startswith(f"{FLIGHT}-real-alt/"))
    idx = np.unique(np.round(np.linspace(0, len(names) - 1, 4)).astype(int))
    assert alt == sorted([f"{FLIGHT}-real-alt/{names[i]}.JPG" for i in idx]
                         + [f"{FLIGHT}-real-alt/{names[i]}_semantics.npy" for i in idx])


def test_topoflight_reads_it_at_the_real_photos_poses(rendered):
    root, _, _ = rendered
    real = TopoFlight(root, FLIGHT, domain="real")
    alt = TopoFlight(root, FLIGHT, domain="real_alt")
    assert len(alt) == 4 and alt[0]["domain"] == "real_alt"
    np.testing.assert_array_equal(alt.rows, real.rows)
    np.testing.assert_array_equal(alt.poses(), real.poses())
    assert [p.parent.name for p in alt.image_paths] == [f"{FLIGHT}-real-alt"] * 4
    assert [p.name for p in alt.image_paths] == [p.name for p in real.image_paths]


@pytest.mark.parametrize("flight", [FLIGHT, WINTER])
def test_it_looks_unlike_both_other_domains(rendered, flight):
    """Known facts of its light, season and camera: a low golden sun on dry straw meadows (more red
    than green, and more red over blue than both other looks), an evening (darker than both), crushed
    blacks (near-black pixels, which the synthetic look never has), another mean colour."""
    root, _, _ = rendered
    means, dark, brightness = {}, {}, {}
    for domain in DOMAINS:
        _, x = _images(root, flight, domain)
        means[domain] = x.mean((0, 2, 3))
        brightness[domain] = float(x.mean())
        dark[domain] = float((x.amax(1) < 0.05).float().mean())
    ratio = {d: (float(m[0] / m[1]), float(m[0] / m[2])) for d, m in means.items()}
    assert ratio["real_alt"][0] > 1.0, ratio
    for other in ("synthetic", "real"):
        assert ratio["real_alt"][1] > ratio[other][1], ratio
        assert brightness["real_alt"] < brightness[other] - 0.03, brightness
        assert float((means["real_alt"] - means[other]).abs().max()) > 0.05, means
    assert dark["synthetic"] == 0.0 and dark["real_alt"] > 0.02 and dark["real_alt"] > 5 * dark["real"], dark


def test_same_seed_same_bytes_whatever_the_batch(rendered, tmp_path):
    root, _, _ = rendered
    render_flights(tmp_path, f"{FLIGHT}:4", size=SIZE, seed=0, batch_size=4, progress=False, domains=DOMAINS)
    mine = {k: v for k, v in _files(tmp_path).items() if k.startswith(f"{FLIGHT}-real-alt/")}
    theirs = {k: v for k, v in _files(root).items() if k.startswith(f"{FLIGHT}-real-alt/")}
    assert len(mine) == 8 and mine == theirs


def _warp_by_hand(sem_hw: np.ndarray, k1: float) -> np.ndarray:
    """Brown's radial model worked directly: the output pixel centre at normalised radius r_d reads
    the ideal image at r_u = r_d (1 + k1 r_d^2) / (1 + k1 r_c^2) (r_c: the corner), nearest pixel."""
    H, W = sem_hw.shape
    f = 480.0 * W / 720.0
    out = np.empty_like(sem_hw)
    rc2 = ((W / 2) ** 2 + (H / 2) ** 2) / f**2
    for v in range(H):
        for u in range(W):
            xd, yd = (u + 0.5 - W / 2) / f, (v + 0.5 - H / 2) / f
            s = (1 + k1 * (xd * xd + yd * yd)) / (1 + k1 * rc2)
            iu = min(max(int(np.floor(xd * s * f + W / 2)), 0), W - 1)
            iv = min(max(int(np.floor(yd * s * f + H / 2)), 0), H - 1)
            out[v, u] = sem_hw[iv, iu]
    return out


@pytest.mark.parametrize("flight", [FLIGHT, WINTER])
def test_semantics_are_the_synthetic_ones_seen_through_the_lens(rendered, flight):
    """Same geometry, so the class of every pixel is the synthetic render's at the point the lens
    images there; only real-only objects (cars, the power line) are added."""
    root, _, _ = rendered
    syn = TopoFlight(root, flight, domain="synthetic", load_semantics=True)
    alt = TopoFlight(root, flight, domain="real_alt", load_semantics=True)
    agree, agree_unwarped = [], []
    for i in range(len(alt)):
        s_syn = syn[i]["semantics"].numpy()
        s_alt = alt[i]["semantics"].numpy()
        keep = s_alt != REAL_ONLY
        warped = _warp_by_hand(s_syn, ALT_K1)
        agree.append((warped == s_alt)[keep].mean())
        agree_unwarped.append((s_syn == s_alt)[keep].mean())
    assert min(agree) > 0.99, agree
    assert np.mean(agree_unwarped) < np.mean(agree) - 0.02  # the lens really moves pixels


def test_distortion_grid_by_hand():
    """TOPO's 720x480 camera (f = 480 px): the corner maps to the corner, the centre is magnified
    by 1 + k1 r_c^2 with r_c^2 = (360^2 + 240^2) / 480^2 = 0.8125, red and blue fringe outwards / inwards."""
    grid = distortion_grid(720, 480).double()
    to_px = lambda g, n: (g + 1) / 2 * n  # noqa: E731 - normalised -> pixel coordinate (align_corners=False)
    corner_u = to_px(grid[1, -1, -1, 0], 720)
    xd, yd = 359.5 / 480, 239.5 / 480
    expected = xd * (1 + ALT_K1 * (xd**2 + yd**2)) / (1 + ALT_K1 * 0.8125) * 480 + 360
    assert abs(float(corner_u) - expected) < 1e-3 and abs(float(corner_u) - 719.5) < 0.05
    # 10.5 px right of the centre reads the ideal image 10.5 / 1.0284375 px right of it (to first order)
    u = to_px(grid[1, 240, 370, 0], 720) - 360
    assert abs(float(u) - 10.5 / (1 + ALT_K1 * 0.8125)) < 0.01
    red, blue = to_px(grid[0, -1, -1, 0], 720) - 360, to_px(grid[2, -1, -1, 0], 720) - 360
    green = corner_u - 360
    assert (float(red / green) == pytest.approx(1 + ALT_CHROMATIC)
            and float(blue / green) == pytest.approx(1 - ALT_CHROMATIC))


def test_appearance_and_argument_errors(rendered, tmp_path):
    app = appearance_for_flight(WINTER, "real_alt")
    assert (app.season, app.snow) == ("late_summer", 0.0)
    assert 250 < app.sun_azimuth_deg < 290 and 5 < app.sun_elevation_deg < 20  # a low sun in the west
    with pytest.raises(ValueError, match="domains"):
        render_flights(tmp_path, f"{FLIGHT}:1", size=SIZE, progress=False, domains=("real_alt",))
    with pytest.raises(ValueError, match="domains"):
        render_flights(tmp_path, f"{FLIGHT}:1", size=SIZE, progress=False, domains=("synthetic", "dusk"))
    import shutil

    shutil.copytree(rendered[0] / FLIGHT, tmp_path / FLIGHT)  # renders without real_alt photos
    with pytest.raises(FileNotFoundError, match="real-alt"):
        TopoFlight(tmp_path, FLIGHT, domain="real_alt")


def test_cli_render_real_alt(rendered, tmp_path, capsys):
    from topoloc.cli import main

    args = ["render", "--out", str(tmp_path), "--flights", f"{FLIGHT}:1", "--size", "48x32", "--device", "cpu",
            "--no-progress"]
    assert main(args) == 0 and not (tmp_path / f"{FLIGHT}-real-alt").exists()
    assert main(args + ["--real-alt"]) == 0
    assert len(list((tmp_path / f"{FLIGHT}-real-alt").glob("*.JPG"))) == 1
