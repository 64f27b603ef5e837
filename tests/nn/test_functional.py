import pytest
import torch
import torch.nn.functional as F

from pyg_recs.nn.functional import l2_normalize


@pytest.mark.parametrize('shape', [(7, 5), (2, 3, 4), (0, 4)])
def test_l2_normalize_matches_torch(shape):
    torch.manual_seed(0)
    x = torch.randn(*shape, requires_grad=True)
    grad = torch.randn(*shape)
    y = l2_normalize(x)
    y.backward(grad)
    x_ref = x.detach().clone().requires_grad_()
    y_ref = F.normalize(x_ref, dim=-1)
    y_ref.backward(grad)
    assert torch.allclose(y, y_ref, atol=1e-6)
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-5)


def test_l2_normalize_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(6, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(l2_normalize, (x, ))


def test_l2_normalize_rows_below_eps_as_torch():
    # A zero row and a row shorter than eps: both divided by eps, with the
    # gradient passed through unprojected, as F.normalize does.
    x = torch.tensor([[0.0, 0.0], [1e-3, -2e-3], [3.0, 4.0]],
                     requires_grad=True)
    grad = torch.tensor([[1.0, 2.0], [0.5, -1.0], [1.0, 1.0]])
    l2_normalize(x, eps=0.1).backward(grad)
    x_ref = x.detach().clone().requires_grad_()
    F.normalize(x_ref, dim=-1, eps=0.1).backward(grad)
    assert torch.allclose(x.grad, x_ref.grad)
    assert torch.allclose(x.grad[:2], grad[:2] / 0.1)
