"""`build_flights` makes a recipe section's `TopoFlight` datasets: the land-cover maps only for the renders."""

from topoloc.experiments.recipe import DataSpec, FlightSpec, build_flights

FLIGHT = "comballaz-2020-11-06-planned"


def test_semantic_maps_are_loaded_for_synthetic_flights_only(tmp_path, make_topo_flight):
    # the semantic maps are the renders' own: a real flight has none to pair with its photos
    make_topo_flight(tmp_path, FLIGHT, n_rows=20, semantics=True)
    data = DataSpec(str(tmp_path), train=[FlightSpec(FLIGHT, split="train", split_block=1)],
                    test=[FlightSpec(FLIGHT, domain, "test", split_block=1) for domain in ("synthetic", "real")])
    synthetic, real = build_flights(data, "test", load_semantics=True)
    assert (synthetic.domain, synthetic.load_semantics, real.domain, real.load_semantics) == (
        "synthetic", True, "real", False)
    assert [f.load_semantics for f in build_flights(data, "test")] == [False, False]
