"""AtLocLoss against its formula worked by hand."""

import math

import numpy as np
import pytest
import torch

from topoloc import AtLocLoss


def test_value_by_hand():
    loss_fn = AtLocLoss(sx=0.5, sq=-2.0)
    pred = torch.tensor([[1.0, 2.0, 3.0, 0.1, 0.2, 0.3], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([[0.0, 2.0, 5.0, 0.1, 0.0, 0.0], [1.0, 1.0, 1.0, 0.3, 0.3, 0.3]])
    # |dt| = 1, 0, 2, 1, 1, 1 -> mean 1.0; |dq| = 0, .2, .3, .3, .3, .3 -> mean 1.4 / 6
    t_l1, q_l1 = 1.0, 1.4 / 6
    expected = math.exp(-0.5) * t_l1 + 0.5 + math.exp(2.0) * q_l1 - 2.0
    assert loss_fn(pred, target).item() == pytest.approx(expected, rel=1e-6)
    terms = loss_fn.terms(pred, target)
    assert terms["t_l1"].item() == pytest.approx(t_l1) and terms["q_l1"].item() == pytest.approx(q_l1)


def test_defaults_and_parameters():
    loss_fn = AtLocLoss()
    assert loss_fn.sax.item() == 0.0 and loss_fn.saq.item() == -3.0
    assert loss_fn.sax.shape == (1,) and loss_fn.saq.shape == (1,)
    assert sorted(dict(loss_fn.named_parameters())) == ["saq", "sax"]
    assert all(p.requires_grad for p in loss_fn.parameters())
    assert not any(p.requires_grad for p in AtLocLoss(learnable=False).parameters())


def test_gradients_of_weights_by_hand():
    rng = np.random.default_rng(0)
    pred = torch.tensor(rng.normal(size=(4, 6)), dtype=torch.float32, requires_grad=True)
    target = torch.tensor(rng.normal(size=(4, 6)), dtype=torch.float32)
    loss_fn = AtLocLoss(sx=0.3, sq=-1.0)
    loss_fn(pred, target).backward()
    d = (pred - target).detach().abs().numpy()
    t_l1, q_l1 = d[:, :3].mean(), d[:, 3:].mean()
    # d/dsx = 1 - exp(-sx) t_l1, d/dsq = 1 - exp(-sq) q_l1
    assert loss_fn.sax.grad.item() == pytest.approx(1 - math.exp(-0.3) * t_l1, rel=1e-5)
    assert loss_fn.saq.grad.item() == pytest.approx(1 - math.exp(1.0) * q_l1, rel=1e-5)
    # d/dpred of exp(-sx) * mean|pred - target| over the 12 translation entries
    expected = math.exp(-0.3) * np.sign((pred - target).detach().numpy()[:, :3]) / 12
    np.testing.assert_allclose(pred.grad[:, :3].numpy(), expected, rtol=1e-5)


def test_optimiser_moves_weights():
    loss_fn = AtLocLoss()
    opt = torch.optim.SGD(loss_fn.parameters(), lr=0.1)
    loss_fn(torch.zeros(2, 6), torch.full((2, 6), 2.0)).backward()  # grads 1 - 2 and 1 - 2 e^3
    opt.step()
    assert loss_fn.sax.item() != 0.0 and loss_fn.saq.item() != -3.0


def test_quaternion_layout():
    loss_fn = AtLocLoss(sx=0.0, sq=0.0)
    pred, target = torch.zeros(3, 7), torch.ones(3, 7)
    assert loss_fn(pred, target).item() == pytest.approx(2.0)


@pytest.mark.parametrize("pred_shape, target_shape", [((2, 6), (2, 7)), ((2, 5), (2, 5)), ((6,), (6,))])
def test_bad_shapes(pred_shape, target_shape):
    with pytest.raises(ValueError, match="pred"):
        AtLocLoss()(torch.zeros(pred_shape), torch.zeros(target_shape))


def test_bad_arguments():
    with pytest.raises(TypeError, match="sx"):
        AtLocLoss(sx="0")
    # A NaN weight made every loss NaN, and "no" (truthy) made the weights learnable.
    for name, value in (("sx", float("nan")), ("sq", float("inf"))):
        with pytest.raises(ValueError, match=f"`{name}` must be a finite log variance"):
            AtLocLoss(**{name: value})
    with pytest.raises(TypeError, match="`learnable` must be True or False, got 'no'"):
        AtLocLoss(learnable="no")
    # numpy's float32 was "must be a float, got float32" where its float64 passed; a numpy pred was an AttributeError
    loss = AtLocLoss(sx=np.float32(0.5), sq=np.float64(-3.0))
    assert (loss.sax.item(), loss.saq.item()) == (0.5, -3.0)
    with pytest.raises(TypeError, match=r"^AtLocLoss: `pred` must be a torch tensor, got ndarray"):
        loss(np.zeros((2, 6), np.float32), torch.zeros(2, 6))
    # the loss is float32 whatever the prediction's dtype, as its docstring says: exp(-0.5) * 1 + 0.5 + 0 - 3
    out = loss(torch.ones(2, 6, dtype=torch.float64), torch.cat([torch.zeros(2, 3), torch.ones(2, 3)], 1).double())
    assert out.dtype == torch.float32 and out.item() == pytest.approx(math.exp(-0.5) + 0.5 - 3.0, abs=1e-6)


def test_an_empty_batch_is_refused_not_nan():
    with pytest.raises(ValueError, match=r"hold no pose \(B = 0\)"):
        AtLocLoss()(torch.zeros(0, 9), torch.zeros(0, 9))


def test_quaternion_term_is_sign_invariant():
    # q and -q are one rotation: the rotation term is the smaller L1 of (pred - q) and (pred + q), per pose.
    loss_fn = AtLocLoss(sx=0.0, sq=0.0)
    q = torch.tensor([[0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 0.0, 0.0]])
    target = torch.cat([torch.zeros(2, 3), q], dim=1)
    pred = torch.cat([torch.zeros(2, 3), torch.stack([-q[0], q[1] + 0.4])], dim=1)
    terms = loss_fn.terms(pred, target)
    # pose 0: -q is exact (0); pose 1: |0.4| on each of 4 numbers -> mean 0.4; batch mean 0.2
    assert terms["q_l1"].item() == pytest.approx(0.2)


def test_6d_code_layout():
    loss_fn = AtLocLoss(sx=0.0, sq=0.0)
    pred, target = torch.zeros(2, 9), torch.zeros(2, 9)
    target[:, 3:] = 0.6  # mean |diff| over the 6 rotation numbers = 0.6
    assert loss_fn.terms(pred, target)["q_l1"].item() == pytest.approx(0.6)


def test_quaternion_term_per_pose_is_a_mean_on_either_sign():
    loss_fn = AtLocLoss(sx=0.0, sq=0.0)
    q = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    pred = torch.cat([torch.zeros(1, 3), -q + 0.1], dim=1)  # 0.1 from -q on each number, 0.9 or 1.1 from q
    target = torch.cat([torch.zeros(1, 3), q], dim=1)
    assert loss_fn.terms(pred, target)["q_l1"].item() == pytest.approx(0.1)


def test_low_precision_poses_are_compared_in_float32():
    # bf16 holds 1/3 as 0.333984...; the class promises the means in float32
    pred = torch.zeros(2, 6, dtype=torch.bfloat16)
    target = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]] * 2, dtype=torch.bfloat16)
    terms = AtLocLoss(sx=0.0, sq=0.0).terms(pred, target)
    assert terms["loss"].dtype == torch.float32
    assert terms["t_l1"].item() == pytest.approx(1 / 3, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(1 / 3, rel=1e-6)
