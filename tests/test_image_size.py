"""The one size parser: (H, W) pairs, the short-side int, width-first text."""

import numpy as np
import pytest

from topoloc.image_size import output_size, parse_image_size


def test_pairs_are_height_first_and_text_is_width_first():
    assert parse_image_size((240, 360)) == (240, 360)
    assert parse_image_size([240, 360]) == (240, 360)
    assert parse_image_size(np.array([240, 360])) == (240, 360)
    assert parse_image_size("360x240") == (240, 360)  # as a screen resolution: 360 wide, 240 high
    assert parse_image_size("360 X 240") == (240, 360)


def test_an_int_is_the_short_side_where_allowed():
    assert parse_image_size(240) == 240
    assert output_size((480, 720), 240) == (240, 360)  # 720 * 240 / 480 = 360, worked by hand
    assert output_size((720, 480), 240) == (360, 240)
    with pytest.raises(ValueError, match=r"my_size.*\(64, 64\) for a square"):
        parse_image_size(64, name="my_size", short_side=False)


@pytest.mark.parametrize("bad", [None, 0, (0, 3), (3,), (2.0, 3), (True, 3), "360-240", "x240", "axb"])
def test_bad_sizes_name_the_argument(bad):
    with pytest.raises(ValueError, match="the_arg: expected"):
        parse_image_size(bad, name="the_arg")


def test_bounds_and_none():
    assert parse_image_size(None, allow_none=True) is None
    with pytest.raises(ValueError, match="16..4096"):
        parse_image_size((8, 8), minimum=16, maximum=4096)
    assert parse_image_size((16, 4096), minimum=16, maximum=4096) == (16, 4096)
