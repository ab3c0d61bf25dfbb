"""`topoloc.engine.predict`'s argument checks (its poses are tested through training and evaluation)."""

import pytest

from topoloc.engine.predict import predict


@pytest.mark.parametrize("batch_size", [0, -1, True, 2.0])
def test_batch_size_other_than_a_positive_int_is_refused_by_name(batch_size):
    # 0 made range() fail with "arg 3 must not be zero"; True ran batches of one image.
    with pytest.raises(ValueError, match=rf"predict: `batch_size` must be a positive int, got {batch_size!r}"):
        predict(None, [], None, batch_size=batch_size)
