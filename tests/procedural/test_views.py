"""`ViewRenderer`: Mini-Comballaz views at any pose, as tensors: the images `render_flights` writes at
the same poses (read back from disk), and what render-and-compare verification needs."""

import numpy as np
import pytest
import torch
from PIL import Image

from topoloc.evaluation import verify_poses
from topoloc.geodesy import LocalFrame
from topoloc.procedural import ViewRenderer, render_flights

FLIGHT = "comballaz-2020-11-06-planned"
SIZE = (48, 32)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    render_flights(root, f"{FLIGHT}:3", size=SIZE, seed=0, progress=False)
    folder = root / FLIGHT
    rows = np.load(folder / f"{FLIGHT}_poses.npy")
    names = sorted(p for p in folder.iterdir() if p.suffix == ".png" and p.stem.endswith("_img"))
    images = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in names])
    index = [int(p.name[len(FLIGHT) + 1:].split("_")[0]) for p in names]  # <flight>_<row:05d>_<photo>_img.png
    assert index == [0, 223, 446]
    return LocalFrame.named("comballaz").cesium_to_c2w(rows[index]), images


def test_views_are_the_images_the_writer_wrote_at_the_same_poses(written):
    c2w, images = written
    assert len(images) == 3
    views = ViewRenderer(*SIZE)(c2w)
    assert views.dtype == torch.uint8 and views.shape == (3, 3, 32, 48)
    assert torch.equal(views, images)
    assert torch.equal(ViewRenderer(*SIZE)(c2w[:, :3]), images)  # (M, 3, 4) poses too


def test_verification_over_views_finds_the_pose_a_render_was_made_at(written):
    """The true pose hidden among poses 40 m east and 8 deg of yaw away: the grey comparison picks it."""
    c2w, images = written
    yaw = np.radians(8.0)
    turn = np.array([[np.cos(yaw), -np.sin(yaw), 0, 0], [np.sin(yaw), np.cos(yaw), 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    east = np.eye(4)
    east[0, 3] = 40.0
    hyp = np.stack([np.stack([east @ p, turn @ p, p]) if i % 2 else np.stack([p, east @ p, turn @ p])
                    for i, p in enumerate(c2w)])
    out = verify_poses(images, hyp, ViewRenderer(*SIZE))
    assert out.index.tolist() == [0, 2, 0]
    assert out.scores.max(1) == pytest.approx(1.0, abs=1e-5)


def test_views_refuse_bad_arguments():
    with pytest.raises(ValueError, match="width: expected a positive integer"):
        ViewRenderer(0, 32)
    views = ViewRenderer(*SIZE)
    with pytest.raises(ValueError, match=r"c2w: expected finite camera-to-world poses \(M, 3 or 4, 4\)"):
        views(np.eye(4))
    assert views(np.zeros((0, 4, 4))).shape == (0, 3, 32, 48)


@pytest.mark.gpu
def test_cuda_views_match_the_cpus_and_verify_as_they_do(written):
    """On a GPU the views differ from the CPU's by float rounding only (as `render` itself), and the
    verification picks the same hypotheses."""
    c2w, images = written
    cpu = ViewRenderer(*SIZE)(c2w)
    gpu = ViewRenderer(*SIZE, device="cuda")(c2w)
    assert gpu.device.type == "cpu" and gpu.dtype == torch.uint8
    assert (gpu.float() - cpu.float()).abs().mean() < 2.0
    east = np.eye(4)
    east[0, 3] = 40.0
    hyp = np.stack([np.stack([east @ p, p]) for p in c2w])
    assert verify_poses(images, hyp, ViewRenderer(*SIZE, device="cuda")).index.tolist() == [1, 1, 1]
