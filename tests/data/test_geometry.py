"""Scene geometry of renders: depth maps and scene coordinates to ENU points and normals.

References: a camera over flat ground, where the depth of every pixel follows from the ray's angle
(worked by hand below; the ray caster's depth is checked against the same model in
tests/procedural/test_procedural_depth_geometry.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topoloc.data import TopoFlight
from topoloc.data.geometry import depth_to_points, flight_normals, geometry_path, scene_points
from topoloc.geodesy import LocalFrame

FRAME = LocalFrame.named("comballaz")


def _c2w(east, north, up, yaw, pitch, roll=0.0) -> np.ndarray:
    ecef = FRAME.enu_to_ecef(np.array([[east, north, up]]))
    return FRAME.cesium_to_c2w(np.concatenate([ecef, [[yaw, pitch, roll]]], 1))[0]


def _flat_ground_depth(c2w: np.ndarray, h: int, w: int, ground_up: float = 0.0) -> np.ndarray:
    """Depth along the optical axis of the plane up = ground_up, by intersecting each pixel's ray by hand."""
    f = 480.0 * w / 720.0
    u, v = np.meshgrid((np.arange(w) + 0.5 - w / 2) / f, (np.arange(h) + 0.5 - h / 2) / f)
    rays = np.stack([u, v, np.ones_like(u)])  # camera frame, z = 1: the parameter is the depth
    down = np.einsum("j,jhw->hw", c2w[2, :3], rays)  # up-component of the world ray
    depth = (ground_up - c2w[2, 3]) / down
    return np.where(depth > 0, depth, np.inf)


@pytest.mark.parametrize("yaw,pitch,roll", [(0.0, -90.0, 0.0), (37.0, -50.0, 0.0), (250.0, -65.0, 8.0)])
def test_depth_over_flat_ground_gives_ground_points_and_up_normals(yaw, pitch, roll):
    c2w = _c2w(120.0, -40.0, 300.0, yaw, pitch, roll)
    depth = _flat_ground_depth(c2w, 24, 36)
    pts = depth_to_points(depth, c2w)
    assert torch.allclose(pts[2], torch.zeros(24, 36), atol=1e-3)  # every point lies on the ground
    from augment.functional import surface_normals

    n = surface_normals(pts[None].double())[0, :, 1:-1, 1:-1]
    assert torch.allclose(n[2], torch.ones_like(n[2]), atol=1e-6)


def test_scene_coordinates_file_gives_enu_points(tmp_path):
    c2w = _c2w(0.0, 0.0, 250.0, 10.0, -70.0)
    depth = _flat_ground_depth(c2w, 8, 12, ground_up=5.0)
    enu = depth_to_points(depth, c2w).numpy().transpose(1, 2, 0).reshape(-1, 3)
    pc = FRAME.enu_to_ecef(enu.astype(np.float64)).reshape(8, 12, 3)
    pc[0, 0] = -1.0  # TOPO's "no hit"
    path = tmp_path / "x_00000_pc.npy"
    np.save(path, pc)
    pts = scene_points(path, c2w, FRAME)
    assert torch.isnan(pts[:, 0, 0]).all()
    assert torch.allclose(pts[2, 1:, 1:], torch.full((7, 11), 5.0), atol=1e-2)


def test_geometry_path_prefers_scene_coordinates_and_names_what_is_missing(tmp_path):
    render = tmp_path / "f_00003_img.png"
    with pytest.raises(FileNotFoundError, match=r"f_00003_pc\.npy.*f_00003_depth\.npy.*--depth"):
        geometry_path(render)
    (tmp_path / "f_00003_depth.npy").write_bytes(b"")
    assert geometry_path(render).name == "f_00003_depth.npy"
    (tmp_path / "f_00003_pc.npy").write_bytes(b"")
    assert geometry_path(render).name == "f_00003_pc.npy"
    # a render whose suffix a copy turned upper case: the same stem (it looked for f_00003_img_pc.npy)
    assert geometry_path(tmp_path / "f_00003_img.PNG").name == "f_00003_pc.npy"


@pytest.mark.parametrize("name, content, match", [
    ("x_00000_depth.npy", b"", "could not read the geometry array"),  # was numpy's bare EOFError
    ("x_00000_pc.npy", b"", "could not read the geometry array"),
    ("x_00000_depth.npy", np.array([{"a": 1}], dtype=object), "could not read the geometry array"),  # a pickle
    ("x_00000_depth.npy", np.zeros((5, 7, 2)), r"a depth map must be a numeric \(H, W\) array .*\(5, 7, 2\)"),
])
def test_a_bad_geometry_file_is_named(tmp_path, name, content, match):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, content, allow_pickle=True)
    with pytest.raises(ValueError, match=rf"{name}: {match}"):
        scene_points(path, _c2w(0.0, 0.0, 250.0, 10.0, -70.0), FRAME)


def test_flight_normals_of_a_flight_over_flat_ground(tmp_path, make_topo_flight):
    from topoloc.data.preset import load_preset

    rows = load_preset("comballaz-LHS")[:3].copy()
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3, poses=rows)
    ds = TopoFlight(tmp_path, "comballaz-LHS", frame="comballaz")
    h, w = 32, 48
    for i, render in enumerate(ds.render_paths):
        c2w = ds.poses()[i]
        np.save(render.with_name(render.name.replace("_img.png", "_depth.npy")),
                _flat_ground_depth(c2w, h, w, ground_up=c2w[2, 3] - 150.0).astype(np.float32))
    n = flight_normals(ds, (8, 12))
    assert n.dtype == torch.int8 and n.shape == (3, 3, 8, 12)
    assert (n[:, 2, 1:-1, 1:-1] == 127).all() and (n[:, :2, 1:-1, 1:-1] == 0).all()


def test_flight_normals_of_a_flight_collection_follow_its_order(tmp_path, make_topo_flight):
    # `topoloc train` hands the trainer a FlightCollection: the normals of each flight, in order.
    # The first flight looks at flat ground (normals straight up); the second sees nothing (infinite
    # depth everywhere: no normal, zeros), so a swapped or dropped flight shows.
    from topoloc.data import FlightCollection
    from topoloc.data.preset import load_preset

    rows = load_preset("comballaz-LHS")[:5].copy()
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3, poses=rows[:3])
    make_topo_flight(tmp_path, "comballaz-sky-LHS", n_rows=2, poses=rows[3:])
    ground, sky = (TopoFlight(tmp_path, name, frame="comballaz") for name in ("comballaz-LHS", "comballaz-sky-LHS"))
    h, w = 32, 48
    for i, render in enumerate(ground.render_paths):
        c2w = ground.poses()[i]
        np.save(render.with_name(render.name.replace("_img.png", "_depth.npy")),
                _flat_ground_depth(c2w, h, w, ground_up=c2w[2, 3] - 150.0).astype(np.float32))
    for render in sky.render_paths:
        np.save(render.with_name(render.name.replace("_img.png", "_depth.npy")), np.full((h, w), np.inf, np.float32))
    n = flight_normals(FlightCollection([ground, sky]), (8, 12))
    assert n.dtype == torch.int8 and n.shape == (5, 3, 8, 12)
    assert (n[:3, 2, 1:-1, 1:-1] == 127).all() and (n[:3, :2, 1:-1, 1:-1] == 0).all()
    assert (n[3:] == 0).all()


def test_flight_normals_refuse_a_depth_map_of_another_aspect_and_take_a_scaled_one(tmp_path, make_topo_flight):
    """A depth map must be its render's shape or a scaling of it (TOPO stores scene coordinates at a fraction of the
    image's resolution); one of another aspect would give normals that do not line up with the image."""
    from PIL import Image

    from topoloc.data.preset import load_preset

    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=1, poses=load_preset("comballaz-LHS")[:1].copy())
    ds = TopoFlight(tmp_path, "comballaz-LHS", frame="comballaz")
    render = ds.render_paths[0]
    width, height = Image.open(render).size
    assert width * 2 == height * 3  # the fixture's renders are 3:2, as TOPO's 720 x 480
    depth = render.with_name(render.name.replace("_img.png", "_depth.npy"))
    c2w = ds.poses()[0]
    np.save(depth, _flat_ground_depth(c2w, height // 2, width // 2, ground_up=c2w[2, 3] - 150.0).astype(np.float32))
    assert (flight_normals(ds, (8, 12))[0, 2, 1:-1, 1:-1] == 127).all()  # half the resolution: taken
    np.save(depth, _flat_ground_depth(c2w, height, height, ground_up=c2w[2, 3] - 150.0).astype(np.float32))
    with pytest.raises(ValueError, match=rf"{depth}: is {height}x{height} \(W x H\), not {width}x{height} or a "
                                         rf"scaling of it like its render {render.name}"):
        flight_normals(ds, (8, 12))

def test_flight_normals_refuses_a_cache(tmp_path):
    with pytest.raises(TypeError, match="TopoFlight"):
        flight_normals(object(), (4, 4))


@pytest.mark.gpu
def test_points_on_the_gpu_match_the_cpu_float64_ones():
    # float32 on the GPU: 0.1 mm at a few hundred metres from the origin is far below a pixel's footprint
    c2w = _c2w(820.0, -460.0, 900.0, 250.0, -65.0, 8.0)
    depth = _flat_ground_depth(c2w, 48, 72, ground_up=350.0)
    cpu = depth_to_points(depth, c2w)
    gpu = depth_to_points(depth, c2w, device="cuda")
    assert gpu.is_cuda
    assert torch.allclose(gpu.cpu(), cpu, atol=2e-3, equal_nan=True)


def test_depth_to_points_by_hand_on_a_square_map():
    # A 2 x 2 map: f = 480 px x 2 / 720 = 4/3 px (the focal length follows the WIDTH, whatever the
    # aspect); pixel centres at (0.5 - 1) / (4/3) = -0.375 and +0.375. Pixel (0, 0) at depth 2 m is
    # (-0.75, -0.75, 2) in the camera, + (10, 20, 30) in the world; depth 0, -1 and inf are no hit.
    c2w = np.eye(4)
    c2w[:3, 3] = [10.0, 20.0, 30.0]
    pts = depth_to_points(np.array([[2.0, 0.0], [np.inf, -1.0]]), c2w)
    torch.testing.assert_close(pts[:, 0, 0], torch.tensor([9.25, 19.25, 32.0]))
    assert torch.isnan(pts.reshape(3, 4)[:, 1:]).all()


def test_scene_coordinates_none_only_where_all_three_are_minus_one_or_not_finite(tmp_path):
    # TOPO writes (-1, -1, -1) for "no hit"; a real ECEF point may hold one -1 coordinate. A
    # non-finite coordinate is no point either.
    real = FRAME.enu_to_ecef(np.array([[10.0, 20.0, 30.0]]))[0]
    pc = np.array([[[-1.0, -1.0, -1.0], [real[0], real[1], real[2]], [np.inf, real[1], real[2]], [-1.0, 6.0e6, 1.0e3]]])
    path = tmp_path / "x_00000_pc.npy"
    np.save(path, pc)
    pts = scene_points(path, np.eye(4), FRAME)
    assert torch.isnan(pts[:, 0, 0]).all() and torch.isnan(pts[:, 0, 2]).all()
    torch.testing.assert_close(pts[:, 0, 1], torch.tensor([10.0, 20.0, 30.0]), atol=1e-3, rtol=0)
    assert torch.isfinite(pts[:, 0, 3]).all()


@pytest.mark.parametrize("name, content, match", [
    ("x_00000_pc.npy", np.zeros((5, 7, 2)), r"scene coordinates must be \(H, W, 3\) ECEF metres, got \(5, 7, 2\)"),
    ("x_00000_depth.npy", np.full((5, 7), "a"), r"a depth map must be a numeric \(H, W\) array .*dtype <U1"),
    # complex numbers were taken, their imaginary part dropped with numpy's ComplexWarning
    ("x_00000_depth.npy", np.full((5, 7), 1 + 2j), r"a depth map must be a numeric \(H, W\) array .*dtype complex128"),
    ("x_00000_pc.npy", np.full((5, 7, 3), 1 + 2j),
     r"scene coordinates must be \(H, W, 3\) ECEF metres, got \(5, 7, 3\) dtype complex128"),
    ("x_00000_pc.npy", np.full((5, 7, 3), "a"),
     r"scene coordinates must be .*dtype <U1"),  # was numpy's bare ValueError
    # a map of another convention (z pointing backwards, 0 for nothing hit) was read as "nothing hit" there
    ("x_00000_depth.npy", np.where(np.arange(35).reshape(5, 7) == 3, -120.0, 95.0),
     r"1 of 35 depths are 0 or negative; a depth map holds metres along the optical axis in front of the camera"),
    ("x_00000_depth.npy", np.zeros((5, 7), dtype=np.int32), r"35 of 35 depths are 0 or negative"),
])
def test_a_geometry_array_of_the_wrong_shape_or_kind_is_named(tmp_path, name, content, match):
    path = tmp_path / name
    np.save(path, content)
    with pytest.raises(ValueError, match=rf"{name}: {match}"):
        scene_points(path, _c2w(0.0, 0.0, 250.0, 10.0, -70.0), FRAME)


def test_flight_normals_of_a_slope_are_rounded_not_truncated(tmp_path, make_topo_flight):
    # Ground rising 0.5 m per metre east: normal (-0.5, 0, 1) / sqrt(1.25) = (-0.4472, 0, 0.8944),
    # x 127 = (-56.80, 0, 113.59), rounded (-57, 0, 114) (truncation would give -56 and 113).
    from topoloc.data.preset import load_preset

    rows = load_preset("comballaz-LHS")[:1].copy()
    rows[0, 3:] = [0.0, -90.0, 0.0]  # straight down
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=1, poses=rows)
    ds = TopoFlight(tmp_path, "comballaz-LHS", frame="comballaz")
    render, c2w = ds.render_paths[0], ds.poses()[0]
    h, w = 32, 48
    normal = np.array([-0.5, 0.0, 1.0])  # plane: normal . (X - X0) = 0 through X0 150 m under the camera
    x0 = c2w[:3, 3] - [0.0, 0.0, 150.0]
    f = 480.0 * w / 720.0
    u, v = np.meshgrid((np.arange(w) + 0.5 - w / 2) / f, (np.arange(h) + 0.5 - h / 2) / f)
    rays = np.einsum("ij,jhw->ihw", c2w[:3, :3], np.stack([u, v, np.ones_like(u)]))
    depth = normal @ (x0 - c2w[:3, 3]) / np.einsum("i,ihw->hw", normal, rays)
    np.save(render.with_name(render.name.replace("_img.png", "_depth.npy")), depth.astype(np.float32))
    n = flight_normals(ds, (8, 12))[0, :, 1:-1, 1:-1]
    assert (n[0] == -57).all() and (n[1] == 0).all() and (n[2] == 114).all()


def test_flight_scene_points_of_flat_ground_seen_straight_down(tmp_path, make_topo_flight):
    # A nadir camera 150 m above flat ground: every cell's mean point is on the ground, the cells are
    # symmetric about the camera, and neighbouring cells' means lie 4 px / f x 150 m apart (the ground
    # point is linear in the pixel coordinate there): f = 480 x 48 / 720 = 32 px, so 18.75 m.
    from topoloc.data import flight_scene_points
    from topoloc.data.preset import load_preset

    rows = load_preset("comballaz-LHS")[:2].copy()
    rows[:, 3:6] = [0.0, -90.0, 0.0]  # yaw, pitch, roll: straight down
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=2, poses=rows)
    ds = TopoFlight(tmp_path, "comballaz-LHS", frame="comballaz")
    for i, render in enumerate(ds.render_paths):
        c2w = ds.poses()[i]
        np.save(render.with_name(render.name.replace("_img.png", "_depth.npy")),
                _flat_ground_depth(c2w, 32, 48, ground_up=c2w[2, 3] - 150.0).astype(np.float32))
    cells = flight_scene_points(ds, (8, 12)).double()
    assert cells.shape == (2, 3, 8, 12) and torch.isfinite(cells).all()
    for i in range(2):
        c2w = ds.poses()[i]
        torch.testing.assert_close(cells[i, 2], torch.full((8, 12), c2w[2, 3] - 150.0, dtype=torch.float64),
                                   atol=0.01, rtol=0)
        centre = cells[i, :2].mean((1, 2))
        torch.testing.assert_close(centre, torch.as_tensor(c2w[:2, 3]), atol=0.05, rtol=0)  # float32 points
        across = (cells[i, :2, :, 1:] - cells[i, :2, :, :-1]).norm(dim=0)
        down = (cells[i, :2, 1:, :] - cells[i, :2, :-1, :]).norm(dim=0)
        torch.testing.assert_close(across, torch.full_like(across, 18.75), atol=0.01, rtol=0)
        torch.testing.assert_close(down, torch.full_like(down, 18.75), atol=0.01, rtol=0)


def test_pool_scene_points_leaves_out_misses_and_drops_mostly_empty_cells():
    from topoloc.data.geometry import pool_scene_points

    pts = torch.zeros(1, 3, 2, 4)
    pts[0, 0] = torch.tensor([[1.0, 3.0, 5.0, float("nan")], [float("nan"), 7.0, float("nan"), float("inf")]])
    cells = pool_scene_points(pts, (1, 2))
    # left cell: 3 of 4 pixels hit, mean east (1 + 3 + 7) / 3; right cell: 1 of 4 hit: below half, none
    torch.testing.assert_close(cells[0, :, 0, 0], torch.tensor([11.0 / 3.0, 0.0, 0.0]))
    assert torch.isnan(cells[0, :, 0, 1]).all()
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        pool_scene_points(torch.zeros(3, 4, 4), (2, 2))


def test_the_geometry_of_a_real_alt_flight_is_refused():
    # real_alt's photos are taken through a barrel-distorting, 2.8 % zooming lens: the renders' pinhole depth maps
    # were paired with them without a word (0.7-9 m off at the median)
    from pathlib import Path
    from types import SimpleNamespace

    from topoloc.data.geometry import flight_scene_points
    from topoloc.engine.scene_head import check_scene_source

    flight = SimpleNamespace(flight="comballaz-2020-11-06-planned", domain="real_alt", frame=FRAME,
                             render_paths=[Path("never-read_img.png")], poses=lambda: np.eye(4)[None])
    for fn in (flight_scene_points, flight_normals):
        with pytest.raises(ValueError, match=rf"^{fn.__name__}: comballaz-2020-11-06-planned \(real_alt\): its photos "
                                             r"are taken through another lens"):
            fn(flight, (8, 12))
    with pytest.raises(ValueError, match=r"^TrainConfig.scene_coords: comballaz-2020-11-06-planned \(real_alt\)"):
        check_scene_source(flight, None)
