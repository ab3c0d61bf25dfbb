"""`topoloc.experiments.leakage.other_training_data`: the brackets' training flights against the checkpoint's
record of its training images, worked by hand."""

import hashlib

import numpy as np

from topoloc.experiments.leakage import other_training_data


class _Flights:
    """A stand-in for a `FlightCollection`: its length and poses are all the check reads."""

    def __init__(self, c2w):
        self.c2w = c2w

    def __len__(self):
        return len(self.c2w)

    def poses(self):
        return self.c2w


def _poses(n, shift=0.0):
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.arange(n) * 10.0 + shift
    return c2w


def _record(c2w, with_poses=True):
    record = {"images": len(c2w), "sha256": "pixels and poses, not read here"}
    if with_poses:
        record["poses_sha256"] = hashlib.sha256(c2w.astype("<f8").tobytes()).hexdigest()
    return record


def test_the_images_it_trained_on_say_nothing():
    assert other_training_data(_record(_poses(5)), _Flights(_poses(5)), "recipe.yaml") == []


def test_more_images_or_other_poses_are_said():
    more = other_training_data(_record(_poses(5)), _Flights(_poses(8)), "--train-flights")
    assert len(more) == 1 and "(from --train-flights)" in more[0] and "8 images now, against the 5" in more[0]
    moved = other_training_data(_record(_poses(5)), _Flights(_poses(5, shift=0.5)), "recipe.yaml")
    assert len(moved) == 1 and "the 5 images it trained on in number, at other poses" in moved[0]
    order = other_training_data(_record(_poses(5)), _Flights(_poses(5)[::-1]), "recipe.yaml")
    assert len(order) == 1


def test_an_older_record_is_checked_by_its_count_alone():
    old = _record(_poses(5), with_poses=False)
    assert other_training_data(old, _Flights(_poses(5, shift=0.5)), "recipe.yaml") == []
    assert len(other_training_data(old, _Flights(_poses(6)), "recipe.yaml")) == 1
    assert other_training_data(None, _Flights(_poses(6)), "recipe.yaml") == []
    assert other_training_data(_record(_poses(5)), None, "recipe.yaml") == []


# ------------------------------------------------------------------ adopt_training_splits, by hand
def test_a_test_split_takes_the_training_flights_split_options():
    # Trained on the train rows of F split 0.9 / 0.1 / 0 in blocks of 10 (the demo's); tested on F's "test" rows
    # with no option of its own: without adopting the training's options those rows would be F's default split
    # (0.8 / 0.1 / 0.1, other blocks), overlapping the rows training used.
    from topoloc.experiments.recipe_spec import FlightSpec
    from topoloc.experiments.leakage import adopt_training_splits

    trained = [FlightSpec("F", "synthetic", "train", split_fractions=(0.9, 0.1, 0.0), split_block=10),
               FlightSpec("G", "synthetic", "train")]  # no option of its own: nothing to adopt
    tests = [FlightSpec("F", "real", "test"), FlightSpec("F", "synthetic", "all"),
             FlightSpec("F", "synthetic", "val", split_seed=3), FlightSpec("G", "real", "test"),
             FlightSpec("H", "real", "test")]
    out, notes = adopt_training_splits(tests, trained, "--train-flights")
    assert out[0] == FlightSpec("F", "real", "test", split_fractions=(0.9, 0.1, 0.0), split_block=10)
    assert out[1:] == tests[1:]  # split "all", options of its own, a trained flight without options, another
    assert notes == ["Test flight F real test: split as the same flight is split for training (--train-flights: "
                     "split_fractions (0.9, 0.1, 0.0), split_block 10), so its test rows are those training left out."]
