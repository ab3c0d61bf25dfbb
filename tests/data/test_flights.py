"""ComballazSynthetic, ComballazAir, EPFLPhantom: flights found under root, shared frame, splits, collation."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from topoloc.data import ComballazAir, ComballazSynthetic, EPFLPhantom, TopoFlight
from topoloc.geodesy import LocalFrame

PILOTED, PLANNED, WINTER = "comballaz-2020-11-06-piloted", "comballaz-2020-11-06-planned", "comballaz-2021-03-27-winter"


@pytest.fixture
def air_root(tmp_path, make_topo_flight):
    make_topo_flight(tmp_path, PILOTED, n_rows=8, rows=[0, 2, 4, 6, 7])
    make_topo_flight(tmp_path, WINTER, n_rows=6, rows=[1, 3, 5])
    make_topo_flight(tmp_path, "sepey-2021-10-13-outofplace", n_rows=4)
    return tmp_path


class TestComballazSynthetic:
    def test_is_the_lhs_flight(self, topo_root, row_of_image):
        ds = ComballazSynthetic(topo_root, image_size=(8, 12))
        assert ds.flight == "comballaz-LHS" and ds.domain == "synthetic" and len(ds) == 18
        assert ds.frame == LocalFrame.named("comballaz")
        s = ds[5]
        assert row_of_image(s["image"]) == s["index"] and s["image"].shape == (3, 8, 12)

    def test_splits_match_topo_flight(self, topo_root):
        for split in ("train", "val", "test"):
            a = ComballazSynthetic(topo_root, split=split).rows
            b = TopoFlight(topo_root, "comballaz-LHS", split=split, split_block=1).rows
            np.testing.assert_array_equal(a, b)


class TestComballazAir:
    def test_finds_present_flights(self, air_root, row_of_image, image_domain):
        ds = ComballazAir(air_root)
        assert [f.flight for f in ds.datasets] == [PILOTED, WINTER]  # sepey is out of place: not by default
        assert len(ds) == 8 and ds.flight_of == [PILOTED] * 5 + [WINTER] * 3
        assert ds.rows.tolist() == [0, 2, 4, 6, 7, 1, 3, 5]
        for i in range(len(ds)):
            s = ds[i]
            assert s["flight"] == ds.flight_of[i] and s["index"] == ds.rows[i]
            assert row_of_image(s["image"]) == s["index"] and image_domain(s["image"]) == "real"
        assert ds.poses().shape == (8, 4, 4) and ds.cesium().shape == (8, 6)
        np.testing.assert_allclose(ds.poses()[6], ds[6]["c2w"].numpy())

    def test_domains(self, air_root, image_domain):
        syn = ComballazAir(air_root, domain="synthetic")
        assert image_domain(syn[0]["image"]) == "synthetic" and syn[0]["domain"] == "synthetic"
        paired = ComballazAir(air_root, domain="paired", image_size=(8, 12))
        batch = next(iter(DataLoader(paired, batch_size=4)))
        assert batch["image"].shape == batch["image_synthetic"].shape == (4, 3, 8, 12)
        assert batch["c2w"].dtype == torch.float64 and list(batch["flight"]) == [PILOTED] * 4

    def test_flights_argument_and_out_of_place(self, air_root):
        ds = ComballazAir(air_root, flights=ComballazAir.OUT_OF_PLACE)
        assert ds.frame == LocalFrame.named("comballaz") and len(ds) == 4
        with pytest.raises(FileNotFoundError, match=f"{PLANNED}: folder not found"):
            ComballazAir(air_root, flights=[PLANNED])
        with pytest.raises(ValueError, match="flights"):
            ComballazAir(air_root, flights=PILOTED)

    def test_split_dict_and_partition(self, air_root):
        with pytest.warns(UserWarning, match="winter .* is empty"):
            ds = ComballazAir(air_root, split={PILOTED: [2, 6]})
        assert ds.flight_of == [PILOTED, PILOTED]
        assert ds.rows.tolist() == [2, 6] and len(ds.datasets) == 2 and len(ds.datasets[1]) == 0
        with pytest.raises(ValueError, match="not in flights"):
            ComballazAir(air_root, split={"comballaz-x": [0]})
        with pytest.raises(ValueError, match="dict"):
            ComballazAir(air_root, split=[0, 1])
        with pytest.warns(UserWarning):  # tiny flights: some splits are empty
            sizes = [len(ComballazAir(air_root, split=s, split_block=1)) for s in ("train", "val", "test")]
        assert sum(sizes) == 8

    def test_none_present(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="none of the ComballazAir flight folders"):
            ComballazAir(tmp_path)


class TestEPFLPhantom:
    def test_epfl_frame(self, tmp_path, make_topo_flight, row_of_image):
        make_topo_flight(tmp_path, "EPFL-2020-09-24-planned", n_rows=5)
        ds = EPFLPhantom(tmp_path)
        assert ds.frame == LocalFrame.named("epfl") and len(ds) == 5
        assert row_of_image(ds[3]["image"]) == 3
        # EPFL poses are within a few km of the EPFL origin
        assert np.abs(ds.poses()[:, :3, 3]).max() < 5_000
        # EPFL poses in the Comballaz frame are 41.5 km from its origin: refused unless the limit is lifted.
        with pytest.raises(ValueError, match="frame: 'comballaz' .* its nearest position is 41.5 km from that origin"):
            EPFLPhantom(tmp_path, flights=["EPFL-2020-09-24-planned"], frame="comballaz")
        st = EPFLPhantom(tmp_path, flights=["EPFL-2020-09-24-planned"], frame="comballaz", max_distance_m=None)
        assert st.frame == LocalFrame.named("comballaz")


class TestFlightCollectionIndexing:
    """Samples, images, pose rows and paths of a two-flight collection line up at every index."""

    def test_load_image_at_every_index_and_from_the_end(self, air_root, row_of_image):
        ds = ComballazAir(air_root)  # piloted rows 0, 2, 4, 6, 7 then winter rows 1, 3, 5
        want = [0, 2, 4, 6, 7, 1, 3, 5]
        assert [row_of_image(ds.load_image(i)) for i in range(8)] == want
        assert [row_of_image(ds.load_image(i)) for i in range(-8, 0)] == want
        with pytest.raises(IndexError, match="index 8 out of range for 8 samples"):
            ds.load_image(8)
        with pytest.raises(IndexError, match="index -9 out of range for 8 samples"):
            ds.load_image(-9)

    def test_load_image_refuses_a_fractional_index(self, air_root):
        ds = ComballazAir(air_root)
        with pytest.raises(TypeError, match="a sample index must be a whole number, got 1.5"):
            ds.load_image(1.5)  # read image 1
        with pytest.raises(TypeError, match="a sample index must be a whole number, got 1.5"):
            ds.datasets[0].load_image(1.5)

    def test_cesium_and_image_paths_follow_the_sample_order(self, air_root):
        ds = ComballazAir(air_root)
        # the pose files the fixture wrote, at the rows the collection holds
        files = {f: np.load(air_root / f / f"{f}_poses.npy") for f in (PILOTED, WINTER)}
        want = np.stack([files[f][r] for f, r in zip(ds.flight_of, ds.rows)])
        np.testing.assert_array_equal(ds.cesium(), want)
        paths = ds.image_paths
        assert len(paths) == 8 and [p.parent.name for p in paths] == [f"{PILOTED}-real"] * 5 + [f"{WINTER}-real"] * 3

    def test_flights_of_two_frames_are_refused(self, air_root):
        a = TopoFlight(air_root, PILOTED, frame="comballaz")
        b = TopoFlight(air_root, WINTER, frame="epfl", max_distance_m=None)
        from topoloc.data import FlightCollection

        with pytest.raises(ValueError, match="flights: expected one shared local frame"):
            FlightCollection([a, b])
