"""TopoFlight, FlightCollection and ImageCache on inputs an audit found answered badly: a frame that fits none of
a flight's poses, a single flight or names given for a list of flights, a pose file that is a folder, the
pic-names hint, and indices that are booleans or count from the end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topoloc.data import FlightCollection, ImageCache, TopoFlight
from topoloc.data.preset import load_preset
from topoloc.data.topo import read_pic_names


def test_a_frame_that_fits_no_pose_is_named(topo_root):
    # was "20 bad file(s) (... on_error='skip' skips them)", listing files 41.5 km away, never naming `frame`;
    # skipping them left an empty dataset. The EPFL origin lies about 41.5 km from Comballaz.
    with pytest.raises(ValueError, match=r"^frame: 'epfl' \(LocalFrame\(lat_deg=46\.5191.*\)\) does not fit flight "
                                         r"comballaz-LHS: its nearest position is 4\d\.\d km from that origin \(more "
                                         r"than max_distance_m=\d+ m\); its name gives LocalFrame\(lat_deg=46\.3705"):
        TopoFlight(topo_root, "comballaz-LHS", frame="epfl")
    assert len(TopoFlight(topo_root, "comballaz-LHS", frame="comballaz")) == 18  # its own frame: as before


def test_flight_collection_refuses_what_is_not_a_list_of_flights(topo_root):
    flight = TopoFlight(topo_root, "comballaz-LHS")
    # a single flight iterated its samples (reading images), then "AttributeError: 'dict' object has no attribute"
    with pytest.raises(TypeError, match=r"^flights: expected a list of TopoFlight, got TopoFlight \(one flight: "
                                        r"\[flight\]\)$"):
        FlightCollection(flight)
    with pytest.raises(TypeError, match=r"^flights: expected a list of TopoFlight, got a list holding str "):
        FlightCollection(["comballaz-LHS"])
    assert len(FlightCollection([flight])) == len(flight)


def test_a_pose_file_that_is_a_folder_is_said_so(topo_root):
    folder = topo_root / "comballaz-LHS"
    (folder / "comballaz-LHS_poses.npy").unlink()
    (folder / "comballaz-LHS_poses.npy").mkdir()  # was "comballaz-LHS_poses.npy is missing"
    with pytest.raises(FileNotFoundError, match=r"comballaz-LHS_poses\.npy: a folder, expected a pose file"):
        TopoFlight(topo_root, "comballaz-LHS")


def test_the_pic_names_hint_gives_names_without_their_suffix(tmp_path):
    # it suggested "DJI_0001.JPG,DJI_0002.JPG", names that then paired with no render
    path = tmp_path / "x_pic_names.csv"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match=r"photo names without their suffix, e\.g\. DJI_0001,DJI_0002"):
        read_pic_names(path)


def test_pic_names_in_double_quotes_are_read_without_them(tmp_path):
    # a file re-saved by Excel or pandas quotes each name: every render was then "picname ... but row ... is"
    path = tmp_path / "x_pic_names.csv"
    path.write_text('"DJI_0001","DJI_0002", "DJI_0003"\r\n', encoding="utf-8")
    assert read_pic_names(path) == ["DJI_0001", "DJI_0002", "DJI_0003"]


def test_indices_are_whole_numbers_and_count_from_the_end(topo_root):
    flight = TopoFlight(topo_root, "comballaz-LHS")
    with pytest.raises(TypeError, match="a sample index must be a whole number, got True"):
        flight[True]  # was sample 1
    cache = ImageCache(torch.zeros(3, 3, 4, 4, dtype=torch.uint8), torch.eye(4).repeat(3, 1, 1))
    assert cache[-1]["index"] == 2  # was -1
    with pytest.raises(IndexError, match="index 3 out of range for 3 samples"):
        cache[3]
    with pytest.raises(TypeError, match="a sample index must be a whole number"):
        cache[1:3]  # was "int() argument must be ... not 'slice'"


def test_a_split_row_whose_pose_is_not_a_pose_says_so(tmp_path, make_topo_flight):
    # with on_error="skip", asking for a row whose pose holds NaN said it had no image; the image is there
    poses = load_preset("comballaz-2020-11-06-planned")[:4].copy()
    poses[2, 0] = np.nan
    make_topo_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=4, poses=poses)
    said = (r"^split: rows \[2\] of comballaz-2020-11-06-planned were skipped, their pose rows in .*_poses\.npy are "
            r"not poses \(row 2: NaN or inf")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=said):
        TopoFlight(tmp_path, "comballaz-2020-11-06-planned", split=[1, 2], on_error="skip")
