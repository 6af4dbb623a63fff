"""Bad inputs to every public name of spdl_ref.invertible (Section 4): a table of clear errors.

See tests/bad_input_harness.py for what each case must satisfy.
"""

import pytest
import torch
from bad_input_harness import Case, check_coverage, ids, run_case, track
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from spdl_ref import invertible as inv

D, F = torch.float64, torch.float32
NAN, INF = float("nan"), float("inf")


def x64(*shape):
    return torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(0))


def res(**kw):
    return track(inv.InvertibleResidual(kw.pop("dim", 2), hidden=8, dtype=D, **kw))


def _relu_field():
    from spdl_ref.ode import ReLUField

    return ReLUField(2, 2, width=4, activation="tanh", dtype=D)


def _hamiltonian_field():
    from spdl_ref.ode import HamiltonianField

    return HamiltonianField(2, 2, dtype=D)


def _cnf():
    return inv.ContinuousFlow(_relu_field(), "heun")


def _odenet(method="explicit_euler"):
    from spdl_ref.ode import ODENet, PlainField

    return ODENet(PlainField(2, 3, dtype=D), method)


def lip2(z):
    return 2 * z  # Lip(f) = 2: the log-determinant series diverges


def flow2():
    return track(inv.coupling_flow(2, n_layers=2, hidden=4, dtype=D))


def nonfinite(x, value=NAN):
    x = x.clone()
    x.view(-1)[0] = value
    return x


C = Case
I = "invertible."  # noqa: E741

CASES = [
    # --- coupling layers (42)-(43) ---
    C(I + "AdditiveCoupling", lambda: inv.AdditiveCoupling(0), "dim"),
    C(I + "AdditiveCoupling", lambda: inv.AdditiveCoupling((2, 3)), "dim", note="pair"),
    C(I + "AdditiveCoupling", lambda: inv.AdditiveCoupling(4, mask="diagonal"), "mask"),
    C(I + "AdditiveCoupling", lambda: inv.AdditiveCoupling(4, mask=3), "mask", note="int"),
    C(
        I + "AdditiveCoupling",
        lambda: inv.AdditiveCoupling(4, mask=torch.ones(3)),
        "mask",
        note="shape",
    ),
    C(
        I + "AdditiveCoupling",
        lambda: inv.AdditiveCoupling(4, mask=torch.ones(4)),
        "mask",
        note="all",
    ),
    C(I + "AdditiveCoupling", lambda: inv.AdditiveCoupling(4, flip="yes"), "flip"),
    C(I + "AdditiveCoupling", lambda: inv.AdditiveCoupling(4, hidden=0), "hidden"),
    C(I + "AdditiveCoupling", lambda: inv.AdditiveCoupling(4, dtype=torch.int64), "dtype"),
    C(I + "AdditiveCoupling", lambda: inv.AdditiveCoupling(4, device="gpu9"), "device"),
    C(
        I + "AdditiveCoupling",
        lambda: track(inv.AdditiveCoupling(4, dtype=D))(x64(3, 5)),
        "x",
        note="dim",
    ),
    C(
        I + "AdditiveCoupling",
        lambda: track(inv.AdditiveCoupling(4, dtype=D))(x64(3, 4).float()),
        "x",
        note="float32",
    ),
    C(
        I + "AdditiveCoupling",
        lambda: track(inv.AdditiveCoupling(4, dtype=D))(nonfinite(x64(3, 4), INF)),
        "x",
        note="inf",
    ),
    C(
        I + "AdditiveCoupling",
        lambda: track(inv.AdditiveCoupling(4, dtype=D)).inverse(
            torch.ones(3, 4, dtype=torch.int64)
        ),
        "y",
    ),
    C(
        I + "AdditiveCoupling",
        lambda: track(inv.AdditiveCoupling(4, dtype=D))([[0.0] * 4]),
        "x",
        note="list",
    ),
    C(I + "AffineCoupling", lambda: inv.AffineCoupling(4, scale_bound=0), "scale_bound"),
    C(
        I + "AffineCoupling",
        lambda: inv.AffineCoupling(4, scale_bound=NAN),
        "scale_bound",
        note="nan",
    ),
    C(I + "AffineCoupling", lambda: inv.AffineCoupling(3), "dim", note="odd"),
    C(
        I + "AffineCoupling",
        lambda: track(inv.AffineCoupling(4, dtype=D)).log_abs_det_jacobian(x64(4)),
        "x",
    ),
    C(
        I + "AffineCoupling",
        lambda: track(inv.AffineCoupling((2, 4, 4), dtype=D))(x64(1, 2, 4, 5)),
        "x",
        note="image",
    ),
    C(I + "SplineCoupling", lambda: inv.SplineCoupling(4, bins=1), "bins"),
    C(I + "SplineCoupling", lambda: inv.SplineCoupling(4, bins=100), "bins", note="too many"),
    C(I + "SplineCoupling", lambda: inv.SplineCoupling(4, bound=0), "bound"),
    C(
        I + "SplineCoupling",
        lambda: track(inv.SplineCoupling(4, dtype=D)).inverse(nonfinite(x64(2, 4))),
        "y",
    ),
    C(I + "partition_mask", lambda: inv.partition_mask(0), "shape"),
    C(I + "partition_mask", lambda: inv.partition_mask(4, "diag"), "kind"),
    C(I + "partition_mask", lambda: inv.partition_mask(4, "checkerboard"), "kind", note="vector"),
    C(
        I + "partition_mask",
        lambda: inv.partition_mask((2, 3, 3), "alternating"),
        "kind",
        note="image",
    ),
    C(I + "partition_mask", lambda: inv.partition_mask(4, flip=2), "flip"),
    C(I + "partition_mask", lambda: inv.partition_mask(4, dtype=torch.int32), "dtype"),
    C(I + "subnetwork", lambda: inv.subnetwork(4, 0), "outputs_per_entry"),
    C(I + "subnetwork", lambda: inv.subnetwork(4, 1, hidden=0), "hidden"),
    C(I + "subnetwork", lambda: inv.subnetwork((1, 2), 1), "shape"),
    C(I + "subnetwork", lambda: inv.subnetwork(4, 1, zero_init="x"), "zero_init"),
    C(I + "subnetwork", lambda: inv.subnetwork(4, 1, activation="gelu"), "activation"),
    C(I + "AffineCoupling", lambda: inv.AffineCoupling(4, activation=None), "activation"),
    # --- invertible residual layers (44)-(47) ---
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, c=1.0), "c"),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, c=0), "c", note="zero"),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, c="0.5"), "c", note="str"),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, hidden=0), "hidden"),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, n_layers=0), "n_layers"),
    C(
        I + "InvertibleResidual",
        lambda: inv.InvertibleResidual(2, n_power_iterations=-1),
        "n_power_iterations",
    ),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, tol=0), "tol"),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, max_iter=0), "max_iter"),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, logdet="stochastic"), "logdet"),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, beta=0), "beta"),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual(2, learn_beta=1), "learn_beta"),
    C(I + "InvertibleResidual", lambda: inv.InvertibleResidual((2, 3)), "dim"),
    C(I + "InvertibleResidual", lambda: res()(x64(3, 3)), "x", note="dim"),
    C(I + "InvertibleResidual", lambda: res()(x64(3, 2).float()), "x", note="float32"),
    C(I + "InvertibleResidual", lambda: res()(nonfinite(x64(3, 2))), "x", note="nan"),
    C(I + "InvertibleResidual", lambda: res().forward_and_log_det(x64(2)), "x", note="unbatched"),
    C(I + "InvertibleResidual", lambda: res().inverse(x64(3, 4)), "y"),
    C(I + "InvertibleResidual", lambda: res().inverse(x64(3, 2), tol=-1), "tol", note="inverse"),
    C(
        I + "InvertibleResidual",
        lambda: res().log_abs_det_jacobian(x64(3, 2), method="bogus"),
        "method",
    ),
    C(
        I + "InvertibleResidual",
        lambda: res().log_abs_det_jacobian(x64(3, 2), method="exact", n_terms=3),
        "method",
        note="options",
    ),
    C(I + "InvertibleResidual", lambda: res().fixed_point_iterates(x64(3, 2), -1), "iterations"),
    C(
        I + "InvertibleResidual",
        lambda: res(dim=(1, 4, 4))(x64(1, 1, 5, 5)),
        "x",
        note="image size",
    ),
    C(
        I + "InversionError",
        lambda: res(c=0.9).inverse(x64(3, 2) * 5, max_iter=1),
        "max_iter",
        error=inv.InversionError,
    ),
    C(I + "LipSwish", lambda: inv.LipSwish(0), "beta"),
    C(I + "LipSwish", lambda: inv.LipSwish(INF), "beta", note="inf"),
    C(I + "LipSwish", lambda: inv.LipSwish(1.0, learnable="no"), "learnable"),
    C(I + "LipSwish", lambda: track(inv.LipSwish(dtype=D))(x64(2).float()), "x"),
    C(I + "contractive_residual", lambda: inv.contractive_residual(1.5), "c"),
    C(I + "contractive_residual", lambda: inv.contractive_residual(0.5, std=0), "std"),
    C(
        I + "contractive_residual",
        lambda: inv.contractive_residual(0.5, power_iterations=0),
        "power_iterations",
    ),
    C(
        I + "contractive_residual",
        lambda: inv.contractive_residual(0.5, symmetric_linear="no"),
        "symmetric_linear",
    ),
    C(
        I + "fixed_point_errors",
        lambda: inv.fixed_point_errors(nn.Linear(2, 2), x64(3, 2), 3),
        "layer",
    ),
    C(I + "fixed_point_errors", lambda: inv.fixed_point_errors(res(), x64(3, 2), -1), "iterations"),
    C(I + "fixed_point_errors", lambda: inv.fixed_point_errors(res(), x64(3, 3), 2), "x"),
    C(I + "observed_contraction_rate", lambda: inv.observed_contraction_rate(x64(3, 2)), "errors"),
    C(
        I + "observed_contraction_rate",
        lambda: inv.observed_contraction_rate(torch.ones(5), floor=0),
        "floor",
    ),
    C(
        I + "observed_contraction_rate",
        lambda: inv.observed_contraction_rate(torch.full((5,), 1e-13)),
        "errors",
        note="below floor",
    ),
    C(
        I + "observed_contraction_rate",
        lambda: inv.observed_contraction_rate(torch.tensor([1.0, NAN])),
        "errors",
        note="nan",
    ),
    C(I + "largest_lipschitz_bound", lambda: inv.largest_lipschitz_bound(3), "module"),
    C(
        I + "largest_lipschitz_bound",
        lambda: inv.largest_lipschitz_bound(nn.Linear(2, 2)),
        "module",
        note="no residual",
    ),
    # --- spectral normalisation (47) ---
    C(I + "SpectralNormLinear", lambda: inv.SpectralNormLinear(0, 2), "in_features"),
    C(I + "SpectralNormLinear", lambda: inv.SpectralNormLinear(2, -1), "out_features"),
    C(I + "SpectralNormLinear", lambda: inv.SpectralNormLinear(2, 2, c=-1), "c"),
    C(
        I + "SpectralNormLinear",
        lambda: inv.SpectralNormLinear(2, 2, n_power_iterations=-1),
        "n_power_iterations",
    ),
    C(I + "SpectralNormLinear", lambda: inv.SpectralNormLinear(2, 2, bias="yes"), "bias"),
    C(
        I + "SpectralNormLinear",
        lambda: track(inv.SpectralNormLinear(2, 3, dtype=D))(x64(4, 3)),
        "x",
    ),
    C(
        I + "SpectralNormLinear",
        lambda: track(inv.SpectralNormLinear(2, 3, dtype=D))(x64(4, 2).float()),
        "x",
        note="float32",
    ),
    C(
        I + "SpectralNormLinear",
        lambda: track(inv.SpectralNormLinear(2, 3)).power_iteration(-1),
        "n",
    ),
    C(I + "SpectralNormConv2d", lambda: inv.SpectralNormConv2d(1, 1, 2, (4, 4)), "kernel_size"),
    C(I + "SpectralNormConv2d", lambda: inv.SpectralNormConv2d(1, 1, 3, (4,)), "input_size"),
    C(I + "SpectralNormConv2d", lambda: inv.SpectralNormConv2d(0, 1, 3, (4, 4)), "in_channels"),
    C(I + "SpectralNormConv2d", lambda: inv.SpectralNormConv2d(1, 1, 3, (4, 4), c=0), "c"),
    C(
        I + "SpectralNormConv2d",
        lambda: track(inv.SpectralNormConv2d(1, 2, 3, (4, 4), dtype=D))(x64(1, 1, 6, 6)),
        "x",
        note="other size",
    ),
    C(
        I + "SpectralNormConv2d",
        lambda: track(inv.SpectralNormConv2d(1, 2, 3, (4, 4), dtype=D))(x64(1, 2, 4, 4)),
        "x",
        note="channels",
    ),
    # --- linear invertible layers (Section 4.1.3) ---
    C(I + "ActNorm", lambda: inv.ActNorm(0), "channels"),
    C(I + "ActNorm", lambda: inv.ActNorm(2.5), "channels", note="float"),
    C(I + "ActNorm", lambda: inv.ActNorm(2, dtype=torch.int64), "dtype"),
    C(I + "ActNorm", lambda: track(inv.ActNorm(3, dtype=D))(x64(2, 4)), "x", note="channels"),
    C(
        I + "ActNorm",
        lambda: track(inv.ActNorm(3, dtype=D))(x64(2, 3).float()),
        "x",
        note="float32",
    ),
    C(I + "ActNorm", lambda: track(inv.ActNorm(3, dtype=D))(nonfinite(x64(2, 3))), "x", note="nan"),
    C(I + "ActNorm", lambda: track(inv.ActNorm(3, dtype=D)).inverse(x64(3)), "y"),
    C(I + "ChannelLinear", lambda: inv.ChannelLinear("3"), "channels"),
    C(I + "Invertible1x1Conv", lambda: inv.Invertible1x1Conv(3, eps=0), "eps"),
    C(I + "Invertible1x1Conv", lambda: inv.Invertible1x1Conv(0), "channels"),
    C(
        I + "Invertible1x1Conv",
        lambda: track(inv.Invertible1x1Conv(3, dtype=D))(x64(2, 4, 2, 2)),
        "x",
    ),
    C(
        I + "Invertible1x1Conv",
        lambda: track(inv.Invertible1x1Conv(3, dtype=D)).inverse(x64(2, 3).float()),
        "y",
    ),
    C(
        I + "HouseholderOrthogonal",
        lambda: inv.HouseholderOrthogonal(3, n_reflections=0),
        "n_reflections",
    ),
    C("orthogonal.skew", lambda: inv.orthogonal.skew(x64(3, 2)), "a"),
    C("orthogonal.skew", lambda: inv.orthogonal.skew(nonfinite(x64(3, 3))), "a", note="nan"),
    C(I + "HouseholderOrthogonal", lambda: inv.HouseholderOrthogonal(0), "channels"),
    C(
        I + "HouseholderOrthogonal",
        lambda: track(inv.HouseholderOrthogonal(3, dtype=D))(x64(2, 2)),
        "x",
    ),
    C(I + "ExpSkewOrthogonal", lambda: inv.ExpSkewOrthogonal(-1), "channels"),
    C(
        I + "ExpSkewOrthogonal",
        lambda: track(inv.ExpSkewOrthogonal(3, dtype=D)).inverse(x64(2, 4)),
        "y",
    ),
    C(I + "CayleyOrthogonal", lambda: inv.CayleyOrthogonal(3, dtype="float64"), "dtype"),
    C(
        I + "CayleyOrthogonal",
        lambda: track(inv.CayleyOrthogonal(3, dtype=D))(x64(2, 3).float()),
        "x",
    ),
    C(I + "GivensOrthogonal", lambda: inv.GivensOrthogonal(True), "channels"),
    C(
        I + "GivensOrthogonal",
        lambda: track(inv.GivensOrthogonal(3, dtype=D)).log_abs_det_jacobian(nonfinite(x64(2, 3))),
        "x",
    ),
    C(I + "PixelShuffleDown", lambda: inv.PixelShuffleDown(stride=-2), "stride"),
    C(
        I + "PixelShuffleDown",
        lambda: inv.PixelShuffleDown(stride=(2, 2, 2)),
        "stride",
        note="triple",
    ),
    C(I + "PixelShuffleDown", lambda: inv.PixelShuffleDown()(x64(1, 4, 4)), "x"),
    C(
        I + "PixelShuffleDown",
        lambda: inv.PixelShuffleDown()(x64(1, 1, 3, 4)),
        "x",
        note="odd size",
    ),
    C(I + "PixelShuffleDown", lambda: inv.PixelShuffleDown().inverse(x64(1, 3, 2, 2)), "y"),
    C(I + "OrthogonalDownsampling", lambda: inv.OrthogonalDownsampling(None), "channels"),
    C(I + "OrthogonalDownsampling", lambda: inv.OrthogonalDownsampling(2, stride=0), "stride"),
    C(
        I + "OrthogonalDownsampling",
        lambda: track(inv.OrthogonalDownsampling(2, dtype=D))(x64(1, 2, 3, 4)),
        "x",
    ),
    C(
        I + "OrthogonalDownsampling",
        lambda: track(inv.OrthogonalDownsampling(2, dtype=D)).inverse(x64(1, 4, 2, 2)),
        "y",
    ),
    C(
        I + "OrthogonalDownsampling",
        lambda: track(inv.OrthogonalDownsampling(2, dtype=D))(x64(1, 2, 4, 4).float()),
        "x",
        note="float32",
    ),
    # --- networks and memory-efficient backpropagation (Section 4.2.1) ---
    C(
        I + "InvertibleModule",
        lambda: inv.InvertibleModule().forward_and_log_det(torch.ones(3)),
        "x",
    ),
    C(I + "InvertibleSequential", lambda: inv.InvertibleSequential(), "layers"),
    C(I + "InvertibleSequential", lambda: inv.InvertibleSequential(nn.Linear(2, 2)), "layers"),
    C(
        I + "InvertibleSequential",
        lambda: inv.InvertibleSequential(inv.ActNorm(2), memory_efficient=1),
        "memory_efficient",
    ),
    C(
        I + "InvertibleSequential",
        lambda: track(inv.InvertibleSequential(inv.ActNorm(2, dtype=D)))(x64(3, 2).float()),
        "x",
        note="float32",
    ),
    C(
        I + "InvertibleSequential",
        lambda: track(inv.InvertibleSequential(inv.ActNorm(2, dtype=D), memory_efficient=True))(
            x64(3)
        ),
        "x",
        note="unbatched",
    ),
    C(
        I + "InvertibleSequential",
        lambda: track(inv.InvertibleSequential(inv.ActNorm(2, dtype=D))).inverse(
            nonfinite(x64(3, 2))
        ),
        "y",
    ),
    C(
        I + "InvertibleSequential",
        lambda: track(inv.InvertibleSequential(_overflowing(), inv.ActNorm(2, dtype=D)))(x64(3, 2)),
        "layer",
        error=FloatingPointError,
        note="overflow",
    ),
    C(I + "mixed_invertible_network", lambda: inv.mixed_invertible_network(dim=1), "dim"),
    C(
        I + "mixed_invertible_network",
        lambda: inv.mixed_invertible_network(n_repeats=0),
        "n_repeats",
    ),
    C(I + "mixed_invertible_network", lambda: inv.mixed_invertible_network(c=1), "c"),
    C(
        I + "mixed_invertible_network",
        lambda: inv.mixed_invertible_network(memory_efficient=None),
        "memory_efficient",
    ),
    C(I + "coupling_step_memory", lambda: inv.coupling_step_memory(0, False), "depth"),
    C(I + "coupling_step_memory", lambda: inv.coupling_step_memory(2, False, width=1), "width"),
    C(I + "coupling_step_memory", lambda: inv.coupling_step_memory(2, 1), "memory_efficient"),
    C(I + "coupling_step_memory", lambda: inv.coupling_step_memory(2, False, batch=0), "batch"),
    C(I + "peak_memory", lambda: inv.peak_memory(3), "fn"),
    C(I + "peak_memory", lambda: inv.peak_memory(lambda: None, device="nonsense"), "device"),
    # --- log-determinants (Section 4.2.3) ---
    C(I + "logdet_exact", lambda: inv.logdet_exact(3, x64(2, 2)), "f"),
    C(I + "logdet_exact", lambda: inv.logdet_exact(torch.tanh, x64(2)), "x"),
    C(
        I + "logdet_exact",
        lambda: inv.logdet_exact(lambda z: z[:, :1], x64(2, 2)),
        "f",
        note="shape",
    ),
    C(
        I + "logdet_exact",
        lambda: inv.logdet_exact(lambda z: z / 0, x64(2, 2)),
        "f",
        error=FloatingPointError,
        note="overflow",
    ),
    C(
        I + "logdet_power_series",
        lambda: inv.logdet_power_series(torch.tanh, x64(2, 2), n_terms=0),
        "n_terms",
    ),
    C(
        I + "logdet_power_series",
        lambda: inv.logdet_power_series(torch.tanh, x64(2, 2), n_samples=0),
        "n_samples",
    ),
    C(
        I + "logdet_power_series",
        lambda: inv.logdet_power_series(torch.tanh, x64(2, 2), distribution="uniform"),
        "distribution",
    ),
    C(
        I + "logdet_power_series",
        lambda: inv.logdet_power_series(torch.tanh, x64(2, 2), generator="g"),
        "generator",
    ),
    C(
        I + "logdet_power_series",
        lambda: inv.logdet_power_series(lip2, x64(2, 2)),
        "f",
        note="diverges",
    ),
    C(
        I + "logdet_power_series",
        lambda: inv.logdet_power_series(torch.tanh, nonfinite(x64(2, 2))),
        "x",
    ),
    C(
        I + "logdet_russian_roulette",
        lambda: inv.logdet_russian_roulette(torch.tanh, x64(2, 2), p=1),
        "p",
    ),
    C(
        I + "logdet_russian_roulette",
        lambda: inv.logdet_russian_roulette(torch.tanh, x64(2, 2), p=0),
        "p",
        note="zero",
    ),
    C(
        I + "logdet_russian_roulette",
        lambda: inv.logdet_russian_roulette(torch.tanh, x64(2, 2), n_exact=0),
        "n_exact",
    ),
    C(
        I + "logdet_russian_roulette",
        lambda: inv.logdet_russian_roulette(torch.tanh, x64(2, 2), distribution="x"),
        "distribution",
    ),
    C(
        I + "logdet_russian_roulette",
        lambda: inv.logdet_russian_roulette(lip2, x64(2, 2)),
        "f",
        note="diverges",
    ),
    C(
        I + "logdet_russian_roulette",
        lambda: inv.logdet_russian_roulette("tanh", x64(2, 2)),
        "f",
        note="str",
    ),
    C(I + "autograd_log_abs_det", lambda: inv.autograd_log_abs_det(3, x64(2, 2)), "layer"),
    C(I + "autograd_log_abs_det", lambda: inv.autograd_log_abs_det(torch.tanh, x64(2)), "x"),
    C(
        I + "autograd_log_abs_det",
        lambda: inv.autograd_log_abs_det(lambda z: z[:, :1], x64(2, 2)),
        "layer",
        note="not square",
    ),
    C(I + "randomise_parameters", lambda: inv.randomise_parameters(3), "layer"),
    C(
        I + "randomise_parameters",
        lambda: inv.randomise_parameters(track(nn.Linear(2, 2)), scale=0),
        "scale",
    ),
    C(
        I + "randomise_parameters",
        lambda: inv.randomise_parameters(track(nn.Linear(2, 2)), generator="seed"),
        "generator",
    ),
    # --- flows (48)-(49) ---
    C(I + "NormalisingFlow", lambda: inv.NormalisingFlow(nn.Linear(2, 2), 2), "transform"),
    C(I + "NormalisingFlow", lambda: inv.NormalisingFlow(inv.ActNorm(2), 0), "dim"),
    C(I + "NormalisingFlow", lambda: flow2().log_prob(x64(3, 3)), "x"),
    C(I + "NormalisingFlow", lambda: flow2().nll(x64(3, 2).float()), "x", note="float32"),
    C(I + "NormalisingFlow", lambda: flow2().sample(0), "n"),
    C(I + "NormalisingFlow", lambda: flow2().sample(2, generator=3), "generator"),
    C(I + "NormalisingFlow", lambda: flow2().base_log_prob(x64(3, 5)), "z"),
    C(I + "coupling_flow", lambda: inv.coupling_flow(2, kind="glow"), "kind"),
    C(I + "coupling_flow", lambda: inv.coupling_flow(1), "dim"),
    C(I + "coupling_flow", lambda: inv.coupling_flow(2, n_layers=0), "n_layers"),
    C(I + "coupling_flow", lambda: inv.coupling_flow(2, memory_efficient="no"), "memory_efficient"),
    C(I + "residual_flow", lambda: inv.residual_flow(2, n_blocks=0), "n_blocks"),
    C(I + "residual_flow", lambda: inv.residual_flow(2, c=1.2), "c"),
    C(I + "residual_flow", lambda: inv.residual_flow(2, logdet="bad"), "logdet"),
    C(I + "residual_flow", lambda: inv.residual_flow(2, actnorm=1), "actnorm"),
    C(I + "residual_flow", lambda: inv.residual_flow(0), "dim"),
    C(I + "fit_flow", lambda: inv.fit_flow(nn.Linear(2, 2), x64(4, 2)), "flow"),
    C(I + "fit_flow", lambda: inv.fit_flow(flow2(), x64(4, 3)), "x"),
    C(I + "fit_flow", lambda: inv.fit_flow(flow2(), x64(4, 2), iterations=0), "iterations"),
    C(I + "fit_flow", lambda: inv.fit_flow(flow2(), x64(4, 2), lr=0), "lr"),
    C(
        I + "log_density_grid",
        lambda: inv.log_density_grid(track(inv.coupling_flow(4, dtype=D))),
        "flow",
    ),
    C(I + "log_density_grid", lambda: inv.log_density_grid(nn.Linear(2, 2)), "flow", note="type"),
    C(I + "log_density_grid", lambda: inv.log_density_grid(flow2(), n=1), "n"),
    C(I + "log_density_grid", lambda: inv.log_density_grid(flow2(), xlim=(1, 0)), "xlim"),
    C(I + "log_density_grid", lambda: inv.log_density_grid(flow2(), ylim=(0,)), "ylim"),
    # --- the spline of Section 4.1.1 ---
    C(
        I + "rational_quadratic_spline",
        lambda: inv.rational_quadratic_spline(x64(3), x64(3, 4), x64(3, 5), x64(3, 3)),
        "heights",
    ),
    C(
        I + "rational_quadratic_spline",
        lambda: inv.rational_quadratic_spline(x64(3), x64(2, 4), x64(2, 4), x64(2, 3)),
        "widths",
    ),
    C(
        I + "rational_quadratic_spline",
        lambda: inv.rational_quadratic_spline(x64(3), x64(3, 4), x64(3, 4), x64(3, 4)),
        "derivatives",
    ),
    C(
        I + "rational_quadratic_spline",
        lambda: inv.rational_quadratic_spline(x64(3), x64(3, 1), x64(3, 1), x64(3, 0)),
        "widths",
        note="one bin",
    ),
    C(
        I + "rational_quadratic_spline",
        lambda: inv.rational_quadratic_spline(nonfinite(x64(3)), x64(3, 4), x64(3, 4), x64(3, 3)),
        "x",
    ),
    C(
        I + "rational_quadratic_spline",
        lambda: inv.rational_quadratic_spline(x64(3), x64(3, 4), x64(3, 4), x64(3, 3), bound=0),
        "bound",
    ),
    C(
        I + "rational_quadratic_spline",
        lambda: inv.rational_quadratic_spline(x64(3), x64(3, 4).float(), x64(3, 4), x64(3, 3)),
        "widths",
        note="float32",
    ),
    C(
        I + "rational_quadratic_spline",
        lambda: inv.rational_quadratic_spline(
            x64(3), x64(3, 4), x64(3, 4), x64(3, 3), inverse="yes"
        ),
        "inverse",
    ),
    C(
        I + "rational_quadratic_spline",
        lambda: inv.rational_quadratic_spline(
            x64(3), x64(3, 4), nonfinite(x64(3, 4), INF), x64(3, 3)
        ),
        "heights",
        note="inf",
    ),
    # --- ODE flows (Section 4.2.3, ref. [24]) and the ResNet remark (Section 4.1.2) ---
    C(I + "TraceAugmentedField", lambda: inv.TraceAugmentedField(nn.Linear(2, 2)), "field"),
    C(
        I + "TraceAugmentedField",
        lambda: inv.TraceAugmentedField(_relu_field()).field(0, x64(3, 2)),
        "u",
    ),
    C(I + "ContinuousFlow", lambda: inv.ContinuousFlow(nn.Linear(2, 2)), "field"),
    C(
        I + "ContinuousFlow",
        lambda: inv.ContinuousFlow(_hamiltonian_field()),
        "field",
        note="phase",
    ),
    C(I + "ContinuousFlow", lambda: inv.ContinuousFlow(_relu_field(), "stormer_verlet"), "method"),
    C(
        I + "ContinuousFlow",
        lambda: inv.ContinuousFlow(_relu_field(), "rk5"),
        "method",
        note="name",
    ),
    C(I + "ContinuousFlow", lambda: inv.ContinuousFlow(_relu_field(), T=0.0), "T"),
    C(I + "ContinuousFlow", lambda: inv.ContinuousFlow(_relu_field(), substeps=0), "substeps"),
    C(I + "ContinuousFlow", lambda: inv.ContinuousFlow(_relu_field(), tol=-1.0), "tol"),
    C(I + "ContinuousFlow", lambda: track(_cnf())(x64(3, 3)), "x", note="dim"),
    C(I + "ContinuousFlow", lambda: track(_cnf())(x64(3, 2).float()), "x", note="float32"),
    C(I + "ContinuousFlow", lambda: track(_cnf()).inverse(nonfinite(x64(3, 2))), "y"),
    C(
        I + "euler_step_inverse",
        lambda: inv.euler_step_inverse(nn.Linear(2, 2), x64(3, 2)),
        "model",
    ),
    C(
        I + "euler_step_inverse",
        lambda: inv.euler_step_inverse(_odenet("rk4"), x64(3, 2)),
        "model",
        note="rk4",
    ),
    C(I + "euler_step_inverse", lambda: inv.euler_step_inverse(_odenet(), x64(3, 2), k=5), "k"),
    C(I + "euler_step_inverse", lambda: inv.euler_step_inverse(_odenet(), x64(3, 3)), "y"),
    C(
        I + "euler_step_inverse",
        lambda: inv.euler_step_inverse(_odenet(), x64(3, 2), solver="bisection"),
        "solver",
    ),
    C(
        I + "euler_step_inverse",
        lambda: inv.euler_step_inverse(res(), x64(3, 2), k=1),
        "k",
        note="res",
    ),
    C(I + "euler_step_inverse", lambda: inv.euler_step_inverse(res(), x64(3, 3)), "y", note="res"),
    C(
        I + "discretisation_errors",
        lambda: inv.discretisation_errors(nn.Linear(2, 2), x64(2, 2)),
        "flow",
    ),
    C(
        I + "discretisation_errors",
        lambda: inv.discretisation_errors(_cnf(), x64(2, 2), substeps=[0]),
        "substeps",
    ),
    C(I + "discretisation_errors", lambda: inv.discretisation_errors(_cnf(), x64(2, 3)), "x"),
    # --- checks and the measurements of Section 4.3 ---
    C(I + "example_layers", lambda: inv.example_layers(dim=1), "dim"),
    C(I + "example_layers", lambda: inv.example_layers(image=(3, 4, 4)), "image"),
    C(I + "example_layers", lambda: inv.example_layers(seed=-1), "seed"),
    C(
        I + "finite_difference_log_abs_det",
        lambda: inv.finite_difference_log_abs_det(3, x64(2, 2)),
        "layer",
    ),
    C(
        I + "finite_difference_log_abs_det",
        lambda: inv.finite_difference_log_abs_det(nn.Linear(2, 2), x64(2, 2).float()),
        "x",
    ),
    C(
        I + "finite_difference_log_abs_det",
        lambda: inv.finite_difference_log_abs_det(nn.Linear(2, 2, dtype=D), x64(2, 2), eps=-1.0),
        "eps",
    ),
    C(I + "norm_estimates", lambda: inv.norm_estimates(nn.Linear(2, 2)), "layer"),
    C(I + "power_method_under_drift", lambda: inv.power_method_under_drift(dim=0), "dim"),
    C(I + "power_method_under_drift", lambda: inv.power_method_under_drift(steps=0), "steps"),
    C(I + "power_method_under_drift", lambda: inv.power_method_under_drift(drift=-1.0), "drift"),
    C(
        I + "power_method_under_drift",
        lambda: inv.power_method_under_drift(iterations=(1, 0)),
        "iterations",
    ),
    C(
        I + "power_method_under_drift",
        lambda: inv.power_method_under_drift(iterations=3),
        "iterations",
        note="int",
    ),
    C(I + "inverse_amplification", lambda: inv.inverse_amplification(3, x64(2, 2)), "layer"),
    C(
        I + "inverse_amplification",
        lambda: inv.inverse_amplification(res(), x64(2, 2).float()),
        "x",
    ),
    C(
        I + "inverse_amplification",
        lambda: inv.inverse_amplification(res(), x64(2, 2), delta=0.0),
        "delta",
    ),
    C(I + "jacobian_fill", lambda: inv.jacobian_fill(3, x64(2, 2)), "layer"),
    C(I + "jacobian_fill", lambda: inv.jacobian_fill(res(), x64(2, 2), rtol=-1.0), "rtol"),
    C(
        I + "inverse_iterations",
        lambda: inv.inverse_iterations(nn.Linear(2, 2), x64(2, 2)),
        "layer",
    ),
    C(I + "inverse_iterations", lambda: inv.inverse_iterations(res(), x64(2, 3)), "y"),
    C(I + "inverse_iterations", lambda: inv.inverse_iterations(res(), x64(2, 2), tol=0.0), "tol"),
    C(
        I + "inverse_iterations",
        lambda: inv.inverse_iterations(res(), x64(2, 2), tol=1e-12, max_iter=1),
        "max_iter",
    ),
    C(I + "coupling_stack", lambda: inv.coupling_stack(0, False), "depth"),
    C(I + "coupling_stack", lambda: inv.coupling_stack(2, 1), "memory_efficient"),
    C(I + "coupling_stack", lambda: inv.coupling_stack(2, False, width=1), "width"),
    C(I + "coupling_step", lambda: inv.coupling_step(3, x64(2, 2)), "net"),
    C(I + "coupling_step", lambda: inv.coupling_step(nn.Linear(2, 2), nonfinite(x64(2, 2))), "xb"),
]


class _Overflow(inv.InvertibleModule):
    """A legal layer whose output overflows for moderate inputs (to test who gets blamed)."""

    def forward(self, x):
        return x * 1e308 * 10

    def inverse(self, y):
        return y / 1e309

    def log_abs_det_jacobian(self, x):
        return x.new_zeros(x.shape[0])


def _overflowing():
    return _Overflow()


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, monkeypatch):
    run_case(case, monkeypatch)


EXEMPT = {
    "invertible.frozen_power_iteration": "a context manager without arguments",
}


def test_every_public_name_has_a_case():
    check_coverage(
        CASES,
        [("invertible", "spdl_ref.invertible"), ("orthogonal", "spdl_ref.invertible.orthogonal")],
        EXEMPT,
    )


# --- hypothesis: bad tensors for every layer's forward and inverse -------------------------------

LAYERS = {
    "AdditiveCoupling": lambda: inv.AdditiveCoupling(4, dtype=D, zero_init=False),
    "AffineCoupling": lambda: inv.AffineCoupling(4, dtype=D, zero_init=False),
    "SplineCoupling": lambda: inv.SplineCoupling(4, dtype=D, zero_init=False, bins=3),
    "InvertibleResidual": lambda: inv.InvertibleResidual(4, hidden=4, dtype=D),
    "ActNorm": lambda: inv.ActNorm(4, dtype=D),
    "Invertible1x1Conv": lambda: inv.Invertible1x1Conv(4, dtype=D),
    "HouseholderOrthogonal": lambda: inv.HouseholderOrthogonal(4, dtype=D),
    "ExpSkewOrthogonal": lambda: inv.ExpSkewOrthogonal(4, dtype=D),
    "CayleyOrthogonal": lambda: inv.CayleyOrthogonal(4, dtype=D),
    "GivensOrthogonal": lambda: inv.GivensOrthogonal(4, dtype=D),
    "InvertibleSequential": lambda: inv.InvertibleSequential(
        inv.ActNorm(4, dtype=D), inv.AffineCoupling(4, dtype=D), memory_efficient=True
    ),
}

bad_values = st.sampled_from([NAN, INF, -INF])
bad_dtypes = st.sampled_from([torch.float32, torch.float16, torch.int64, torch.bool])
batch = st.integers(1, 3)


@pytest.mark.parametrize("name", sorted(LAYERS))
@given(
    n=batch,
    value=bad_values,
    where=st.integers(0, 1000),
    method=st.sampled_from(["forward", "inverse", "log_abs_det_jacobian"]),
)
def test_non_finite_inputs_are_refused(name, n, value, where, method):
    layer = track(LAYERS[name]())
    x = x64(n, 4)
    x.view(-1)[where % x.numel()] = value
    case = Case(name, lambda: getattr(layer, method)(x), "x" if method != "inverse" else "y")
    run_case(case, _NoEnv())


@pytest.mark.parametrize("name", sorted(LAYERS))
@given(n=batch, dtype=bad_dtypes)
def test_inputs_of_another_dtype_are_refused(name, n, dtype):
    layer = track(LAYERS[name]())
    x = x64(n, 4).to(dtype)
    run_case(Case(name, lambda: layer(x), "x"), _NoEnv())


@pytest.mark.parametrize(
    "name",
    sorted(
        set(LAYERS)
        - {
            "ActNorm",
            "Invertible1x1Conv",
            "HouseholderOrthogonal",
            "ExpSkewOrthogonal",
            "CayleyOrthogonal",
            "GivensOrthogonal",
        }
    ),
)
@given(
    shape=st.lists(st.integers(1, 5), min_size=0, max_size=4).filter(
        lambda s: len(s) != 2 or s[1] != 4
    )
)
def test_inputs_of_another_shape_are_refused(name, shape):
    layer = track(LAYERS[name]())
    x = torch.ones(shape, dtype=D)
    run_case(Case(name, lambda: layer(x), "x"), _NoEnv())


class _NoEnv:
    def setenv(self, *args):  # pragma: no cover - hypothesis cases set no environment
        raise AssertionError("no environment in hypothesis cases")
