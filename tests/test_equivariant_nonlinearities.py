import pytest
import torch

from spdl_ref.equivariant import FiniteGroup, NormReLU, act_on_field, norm_nonlinearity


def _err(f, x, g, rho):
    with torch.no_grad():
        return float((f(act_on_field(x, g, rho)) - act_on_field(f(x), g, rho)).abs().max())


@pytest.mark.parametrize("name", ["C4", "D4"])
def test_pointwise_relu_regular_yes_irrep_no(name):
    G = FiniteGroup(name)
    x = torch.randn(2, 3 * G.order, 5, 5, dtype=torch.float64)
    reg = G.representation("regular")
    assert max(_err(torch.relu, x, g, reg) for g in G.elements) == 0.0
    two_dim = next(k for k in G.irreps() if G.representation(k).dim == 2)
    rho = G.representation(two_dim)
    xi = torch.randn(2, 6, 5, 5, dtype=torch.float64)
    assert max(_err(torch.relu, xi, g, rho) for g in G.elements) > 0.1


def test_norm_nonlinearity_is_equivariant_for_orthogonal_reps(dtype):
    G = FiniteGroup("C4")
    rho = G.representation(("irrep", 1))
    x = torch.randn(2, 6, 5, 5, dtype=dtype)

    def f(r):
        return torch.sigmoid(r - 0.5)

    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert max(_err(lambda y: norm_nonlinearity(y, 2, f), x, g, rho) for g in G.elements) < tol
    layer = NormReLU(3, 2, dtype=dtype)
    layer.bias.data.uniform_(-1, 1)
    assert max(_err(layer, x, g, rho) for g in G.elements) < tol
    # the norm nonlinearity keeps each field's direction
    y = norm_nonlinearity(x, 2, f).reshape(2, 3, 2, 5, 5)
    xs = x.reshape(2, 3, 2, 5, 5)
    cross = y[:, :, 0] * xs[:, :, 1] - y[:, :, 1] * xs[:, :, 0]
    assert float(cross.abs().max()) < tol


def test_norm_relu_gradcheck():
    layer = NormReLU(2, 2, dtype=torch.float64)
    layer.bias.data.fill_(-0.3)
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_nonlinearity_bad_inputs():
    with pytest.raises(ValueError, match="field_dim = 2"):
        norm_nonlinearity(torch.zeros(1, 3, 2, 2), 2, torch.relu)
    with pytest.raises(TypeError, match="f must be callable"):
        norm_nonlinearity(torch.zeros(1, 2, 2, 2), 2, 3.0)
    with pytest.raises(ValueError, match="x must have 2 fields"):
        NormReLU(2, 2)(torch.zeros(1, 6, 2, 2))
    with pytest.raises(ValueError, match="field_dim must be >= 1"):
        NormReLU(2, 0)
