"""PoseHead: output layout, dropout only in training, quaternion option."""

import pytest
import torch

from topoloc import PoseHead


def test_layout_matches_linear_layers():
    head = PoseHead(8, dropout=0.5).eval()
    x = torch.randn(4, 8)
    out = head(x)
    assert out.shape == (4, 9)  # translation + the 6D rotation code, raw
    w_t, b_t = head.fc_xyz.weight, head.fc_xyz.bias
    torch.testing.assert_close(out[:, :3], x @ w_t.T + b_t)
    torch.testing.assert_close(out[:, 3:], x @ head.fc_wpqr.weight.T + head.fc_wpqr.bias)


def test_dropout_on_in_train_off_in_eval():
    torch.manual_seed(0)
    head = PoseHead(256, dropout=0.5)
    x = torch.randn(2, 256)
    head.train()
    assert not torch.allclose(head(x), head(x))
    head.eval()
    torch.testing.assert_close(head(x), head(x))


def test_default_dropout_is_atlocs_one_half():
    # The signature's default and the docstring's AtLoc value: p = 0.5. nn.Dropout zeroes each
    # feature with probability p and scales the rest by 1 / (1 - p) = 2. With fc_xyz the identity,
    # the translation output shows the dropped input itself.
    torch.manual_seed(0)
    head = PoseHead(3)
    assert head.dropout.p == 0.5
    with torch.no_grad():
        head.fc_xyz.weight.copy_(torch.eye(3))
        head.fc_xyz.bias.zero_()
    out = head.train()(torch.ones(20_000, 3))[:, :3]
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert abs(float((out == 0).float().mean()) - 0.5) < 0.02  # 60 000 Bernoulli(0.5): sd 0.002
    torch.testing.assert_close(head.eval()(torch.ones(2, 3))[:, :3], torch.ones(2, 3))


@pytest.mark.parametrize("rotation, size", [("6d", 9), ("quat", 7), ("log_quat", 6)])
def test_output_sizes(rotation, size):
    assert PoseHead(8, rotation=rotation).eval()(torch.randn(3, 8)).shape == (3, size)


def test_quaternion_is_unit():
    head = PoseHead(8, rotation="quat").eval()
    out = head(torch.randn(5, 8))
    assert out.shape == (5, 7)
    torch.testing.assert_close(out[:, 3:].norm(dim=1), torch.ones(5))


@pytest.mark.parametrize("kwargs, name", [
    ({"in_dim": 0}, "in_dim"),
    ({"in_dim": 8, "dropout": 1.0}, "dropout"),
    ({"in_dim": 8, "dropout": -0.1}, "dropout"),
    ({"in_dim": 8, "rotation": "euler"}, "rotation"),
    ({"in_dim": 8, "rotation": ["6d"]}, "rotation"),  # was "unhashable type: 'list'"
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PoseHead(**kwargs)


def test_features_of_another_width_name_the_width_the_head_takes():
    # was torch's "mat1 and mat2 shapes cannot be multiplied (2x32 and 64x3)"
    with pytest.raises(ValueError, match=r"PoseHead: `x` must be \(B, 64\) features, got \(2, 32\)"):
        PoseHead(64)(torch.randn(2, 32))


def test_dropout_probability_is_the_one_asked_for():
    # p = 0.25: a quarter of the features zeroed, the rest scaled by 1 / (1 - 0.25) = 4 / 3
    torch.manual_seed(0)
    head = PoseHead(3, dropout=0.25)
    with torch.no_grad():
        head.fc_xyz.weight.copy_(torch.eye(3))
        head.fc_xyz.bias.zero_()
    out = head.train()(torch.ones(20_000, 3))[:, :3]
    assert abs(float((out == 0).float().mean()) - 0.25) < 0.02  # sd 0.0018
    torch.testing.assert_close(out[out != 0], torch.full_like(out[out != 0], 4 / 3))
    no_dropout = PoseHead(8, dropout=0.0).train()
    x = torch.randn(4, 8)
    torch.testing.assert_close(no_dropout(x)[:, :3], x @ no_dropout.fc_xyz.weight.T + no_dropout.fc_xyz.bias)


def test_in_eval_mode_the_codes_are_float32_under_autocast():
    # bf16 codes are 2^-8 of their size apart: about 1 m of a 600 m spread of positions, a floor under every figure
    # read on a GPU, where predict, evaluate and localise autocast
    torch.manual_seed(0)
    head = PoseHead(64, dropout=0.0).eval()
    x = torch.randn(8, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, head(x), rtol=0, atol=0)  # the float32 layers themselves
    with torch.autocast("cpu", dtype=torch.bfloat16):  # training keeps autocast's bf16 layers
        assert head.train()(x).dtype == torch.bfloat16
