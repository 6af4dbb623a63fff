"""Bad inputs to every public name of spdl_ref.equivariant (Section 5): a table of clear errors.

See tests/bad_input_harness.py for what each case must satisfy. The escnn bridge and the escnn
denoiser are covered too (their modules' ``__all__``).
"""

import pytest
import torch
from bad_input_harness import Case, check_coverage, ids, run_case, track
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref import equivariant as eq

pytest.importorskip("escnn")
from spdl_ref.equivariant import escnn_bridge as eb
from spdl_ref.equivariant.equivariant_denoiser import EquivariantDenoiser

D = torch.float64
NAN, INF = float("nan"), float("inf")
C4, D4, C2 = eq.FiniteGroup("C4"), eq.FiniteGroup("D4"), eq.FiniteGroup("C2")
TRIV, REG = C4.representation("trivial"), C4.representation("regular")
IRR = C4.representation(("irrep", 1))


def img(*shape, dtype=D):
    return torch.rand(*shape, dtype=dtype, generator=torch.Generator().manual_seed(0))


def nonfinite(x, value=NAN):
    x = x.clone()
    x.view(-1)[0] = value
    return x


def conv():
    return track(eq.SteerableConv2d(TRIV, REG, 1, 2, 3, dtype=D))


def ordinary():
    return track(eq.OrdinaryDenoiser(4, 1, dtype=D))


def escnn_net(**kw):
    return track(EquivariantDenoiser(8, 1, **kw))


def train_args(**kw):
    args = dict(noise=0.1, iterations=2, batch_size=2)
    args.update(kw)
    return args


def sc_args(**kw):
    args = dict(width=8, depth=1, iterations=1, batch_size=2)
    args.update(kw)
    return args


C = Case
E = "equivariant."

CASES = [
    # --- groups and representations (Section 5.1) ---
    C(E + "FiniteGroup", lambda: eq.FiniteGroup("C3"), "name"),
    C(E + "FiniteGroup", lambda: eq.FiniteGroup(4), "name", note="int"),
    C(E + "FiniteGroup", lambda: C4.compose((5, 0), (0, 0)), "g"),
    C(E + "FiniteGroup", lambda: C4.compose((0, 0), (0, 1)), "h"),
    C(E + "FiniteGroup", lambda: C4.inverse([1, 0]), "g", note="list"),
    C(E + "FiniteGroup", lambda: C4.matrix((1, 0), dtype=torch.int64), "dtype"),
    C(E + "FiniteGroup", lambda: C4.representation("standard"), "kind"),
    C(E + "FiniteGroup", lambda: C4.representation(("irrep", 5)), "kind", note="irrep"),
    C(E + "Representation", lambda: eq.Representation("C4", REG.matrices), "group"),
    C(E + "Representation", lambda: eq.Representation(C4, REG.matrices[:2]), "matrices"),
    C(
        E + "Representation",
        lambda: eq.Representation(C4, REG.matrices.tolist()),
        "matrices",
        note="list",
    ),
    C(
        E + "Representation",
        lambda: eq.Representation(C4, 2 * REG.matrices),
        "matrices",
        note="not orthogonal",
    ),
    C(
        E + "Representation",
        lambda: eq.Representation(C4, REG.matrices.flip(0)),
        "matrices",
        note="not a homomorphism",
    ),
    C(
        E + "Representation",
        lambda: eq.Representation(C4, nonfinite(REG.matrices)),
        "matrices",
        note="nan",
    ),
    C(E + "Representation", lambda: REG.is_homomorphism(-1), "tol"),
    C(E + "Representation", lambda: REG((4, 0)), "g"),
    C(E + "direct_sum", lambda: eq.direct_sum(), "reps"),
    C(E + "direct_sum", lambda: eq.direct_sum(REG, "trivial"), "reps", note="type"),
    C(
        E + "direct_sum",
        lambda: eq.direct_sum(REG, D4.representation("trivial")),
        "reps",
        note="groups",
    ),
    # --- actions (50) ---
    C(E + "rotate90", lambda: eq.rotate90(img(1, 1, 4, 4), 1.5), "k"),
    C(E + "rotate90", lambda: eq.rotate90(img(1, 1, 4, 5)), "x"),
    C(E + "rotate90", lambda: eq.rotate90(nonfinite(img(1, 1, 4, 4))), "x", note="nan"),
    C(E + "reflect", lambda: eq.reflect(img(1, 4, 4)), "x"),
    C(E + "reflect", lambda: eq.reflect(nonfinite(img(1, 1, 4, 4), INF)), "x", note="inf"),
    C(E + "translate", lambda: eq.translate(img(1, 1, 4, 4), 3), "shift"),
    C(E + "translate", lambda: eq.translate(img(1, 1, 4, 4), (1.5, 2)), "shift", note="float"),
    C(E + "translate", lambda: eq.translate(img(4, 4), (1, 2)), "x"),
    C(E + "rotate", lambda: eq.rotate(img(1, 1, 4, 4), "30"), "angle"),
    C(E + "rotate", lambda: eq.rotate(img(1, 1, 4, 4), NAN), "angle", note="nan"),
    C(E + "rotate", lambda: eq.rotate(img(4, 4), 30.0), "x"),
    C(E + "act_on_image", lambda: eq.act_on_image(img(1, 1, 4, 4), (1, 0), "C4"), "group"),
    C(E + "act_on_image", lambda: eq.act_on_image(img(1, 1, 4, 5), (1, 0), C4), "x"),
    C(E + "act_on_image", lambda: eq.act_on_image(img(1, 1, 4, 4), (0, 1), C4), "g"),
    C(E + "act_on_field", lambda: eq.act_on_field(img(1, 4, 4, 4), (1, 0), "regular"), "rep"),
    C(E + "act_on_field", lambda: eq.act_on_field(img(1, 3, 4, 4), (1, 0), REG), "x"),
    C(E + "act_on_field", lambda: eq.act_on_field(img(1, 4, 4, 4), (2, 1), REG), "g"),
    # --- equivariance error ---
    C(E + "disc_mask", lambda: eq.disc_mask(0), "size"),
    C(E + "disc_mask", lambda: eq.disc_mask(5, radius=-1), "radius"),
    C(E + "disc_mask", lambda: eq.disc_mask(5, dtype=torch.int32), "dtype"),
    C(
        E + "commutation_error",
        lambda: eq.commutation_error(3, img(1, 1, 4, 4), eq.reflect, eq.reflect),
        "F",
    ),
    C(
        E + "commutation_error",
        lambda: eq.commutation_error(
            torch.tanh, img(1, 1, 4, 4), eq.reflect, eq.reflect, mask=-torch.ones(4, 4)
        ),
        "mask",
    ),
    C(
        E + "commutation_error",
        lambda: eq.commutation_error(
            torch.tanh, img(1, 1, 4, 4), eq.reflect, eq.reflect, mask=torch.ones(3, 3)
        ),
        "mask",
        note="shape",
    ),
    C(
        E + "commutation_error",
        lambda: eq.commutation_error(torch.tanh, img(1, 1, 4, 4), eq.reflect, lambda y: y[..., 1:]),
        "T_out",
    ),
    C(
        E + "commutation_error",
        lambda: eq.commutation_error(
            torch.tanh, nonfinite(img(1, 1, 4, 4)), eq.reflect, eq.reflect
        ),
        "x",
    ),
    C(
        E + "commutation_error",
        lambda: eq.commutation_error(torch.log, -img(1, 1, 4, 4), eq.reflect, eq.reflect),
        "F",
        error=FloatingPointError,
        note="nan output",
    ),
    C(E + "equivariance_error", lambda: eq.equivariance_error(3, img(1, 1, 4, 4), 90), "model"),
    C(
        E + "equivariance_error",
        lambda: eq.equivariance_error(torch.tanh, img(1, 1, 4, 5), 90),
        "x",
    ),
    C(
        E + "equivariance_error",
        lambda: eq.equivariance_error(torch.tanh, img(1, 1, 4, 4), NAN),
        "angle",
    ),
    C(
        E + "equivariance_error",
        lambda: eq.equivariance_error(torch.tanh, img(1, 1, 4, 4), 90, invariant="yes"),
        "invariant",
    ),
    # --- kernel constraint (Section 5.1.2) ---
    C(E + "constraint_matrix", lambda: eq.constraint_matrix(TRIV, REG, 2), "size"),
    C(
        E + "constraint_matrix",
        lambda: eq.constraint_matrix(TRIV, REG, 3, support="round"),
        "support",
    ),
    C(E + "constraint_matrix", lambda: eq.constraint_matrix("trivial", REG, 3), "rho_in"),
    C(
        E + "constraint_matrix",
        lambda: eq.constraint_matrix(TRIV, D4.representation("regular"), 3),
        "rho_in",
        note="groups",
    ),
    C(E + "kernel_basis", lambda: eq.kernel_basis(TRIV, REG, 0), "size"),
    C(E + "kernel_basis", lambda: eq.kernel_basis(TRIV, REG, 3, tol=-1), "tol"),
    C(E + "kernel_basis", lambda: eq.kernel_basis(TRIV, 3, 3), "rho_out"),
    C(E + "basis_dimension", lambda: eq.basis_dimension(nonfinite(img(2, 1, 1, 3, 3))), "basis"),
    C(E + "basis_dimension", lambda: eq.basis_dimension(img(2, 1, 1, 3, 3), tol=0), "tol"),
    C(
        E + "kernel_constraint_residual",
        lambda: eq.kernel_constraint_residual(img(3, 1, 3, 3), TRIV, REG),
        "K",
    ),
    C(
        E + "kernel_constraint_residual",
        lambda: eq.kernel_constraint_residual(nonfinite(img(4, 1, 3, 3)), TRIV, REG),
        "K",
        note="nan",
    ),
    C(
        E + "kernel_constraint_residual",
        lambda: eq.kernel_constraint_residual(img(4, 1, 3, 3), TRIV, "regular"),
        "rho_out",
    ),
    C(E + "invariant_vectors", lambda: eq.invariant_vectors(3), "rho"),
    C(E + "invariant_vectors", lambda: eq.invariant_vectors(REG, tol=0), "tol"),
    C(E + "SteerableConv2d", lambda: eq.SteerableConv2d("trivial", REG, 1, 1, 3), "rho_in"),
    C(E + "SteerableConv2d", lambda: eq.SteerableConv2d(TRIV, REG, 0, 1, 3), "c_in"),
    C(E + "SteerableConv2d", lambda: eq.SteerableConv2d(TRIV, REG, 1, 0, 3), "c_out"),
    C(E + "SteerableConv2d", lambda: eq.SteerableConv2d(TRIV, REG, 1, 1, 4), "size"),
    C(
        E + "SteerableConv2d",
        lambda: eq.SteerableConv2d(TRIV, REG, 1, 1, 3, support="round"),
        "support",
    ),
    C(E + "SteerableConv2d", lambda: eq.SteerableConv2d(TRIV, REG, 1, 1, 3, bias=1), "bias"),
    C(
        E + "SteerableConv2d",
        lambda: eq.SteerableConv2d(TRIV, IRR, 1, 1, 1),
        "rho_in",
        note="no kernel",
    ),
    C(
        E + "SteerableConv2d",
        lambda: eq.SteerableConv2d(TRIV, REG, 1, 1, 3, dtype=torch.int64),
        "dtype",
    ),
    C(E + "SteerableConv2d", lambda: conv()(img(1, 2, 5, 5)), "x", note="channels"),
    C(
        E + "SteerableConv2d",
        lambda: conv()(img(1, 1, 5, 5, dtype=torch.float32)),
        "x",
        note="float32",
    ),
    C(E + "SteerableConv2d", lambda: conv()(img(1, 5, 5)), "x", note="unbatched"),
    C(E + "SteerableConv2d", lambda: conv()(nonfinite(img(1, 1, 5, 5))), "x", note="nan"),
    # --- nonlinearities (Section 5.1.3) ---
    C(E + "norm_nonlinearity", lambda: eq.norm_nonlinearity(img(1, 4, 3, 3), 2, 3), "f"),
    C(
        E + "norm_nonlinearity",
        lambda: eq.norm_nonlinearity(img(1, 4, 3, 3), 0, torch.sigmoid),
        "field_dim",
    ),
    C(
        E + "norm_nonlinearity",
        lambda: eq.norm_nonlinearity(img(1, 3, 3, 3), 2, torch.sigmoid),
        "x",
    ),
    C(
        E + "norm_nonlinearity",
        lambda: eq.norm_nonlinearity(img(1, 4, 3, 3), 2, lambda r: r.sum()),
        "f",
        note="shape",
    ),
    C(E + "NormReLU", lambda: eq.NormReLU(0, 2), "n_fields"),
    C(E + "NormReLU", lambda: eq.NormReLU(2, 0), "field_dim"),
    C(E + "NormReLU", lambda: eq.NormReLU(2, 2, eps=0), "eps"),
    C(E + "NormReLU", lambda: track(eq.NormReLU(2, 2, dtype=D))(img(1, 6, 3, 3)), "x"),
    C(
        E + "NormReLU",
        lambda: track(eq.NormReLU(2, 2, dtype=D))(img(1, 4, 3, 3, dtype=torch.float32)),
        "x",
        note="float32",
    ),
    # --- denoisers and the problem (52) (Section 5.2) ---
    C(E + "OrdinaryDenoiser", lambda: eq.OrdinaryDenoiser(0, 1), "width"),
    C(E + "OrdinaryDenoiser", lambda: eq.OrdinaryDenoiser(4, 1, kernel_size=2), "kernel_size"),
    C(E + "OrdinaryDenoiser", lambda: ordinary()(img(1, 3, 5, 5)), "x"),
    C(
        E + "OrdinaryDenoiser",
        lambda: ordinary()(img(1, 1, 5, 5, dtype=torch.float32)),
        "x",
        note="float32",
    ),
    C(E + "make_denoiser", lambda: eq.make_denoiser("unet"), "kind"),
    C(E + "make_denoiser", lambda: eq.make_denoiser("equivariant", width=12, depth=1), "width"),
    C(
        E + "make_denoiser",
        lambda: eq.make_denoiser("equivariant", width=8, depth=1, fields="spherical"),
        "fields",
    ),
    C(E + "make_denoiser", lambda: eq.make_denoiser("ordinary", group_order=4), "group_order"),
    C(E + "make_denoiser", lambda: eq.make_denoiser("ordinary", depth=0), "depth"),
    C(E + "make_denoiser", lambda: eq.make_denoiser("ordinary", dtype=torch.int64), "dtype"),
    C(E + "parameter_count", lambda: eq.parameter_count(3), "model"),
    C(E + "smoothed_tv", lambda: eq.smoothed_tv(img(1, 1, 4, 4), 0), "eps"),
    C(E + "smoothed_tv", lambda: eq.smoothed_tv(img(1, 4, 4), 0.1), "u"),
    C(E + "smoothed_tv", lambda: eq.smoothed_tv(nonfinite(img(1, 1, 4, 4)), 0.1), "u", note="nan"),
    C(E + "smoothed_tv", lambda: eq.smoothed_tv(img(0, 1, 4, 4), 0.1), "u", note="empty"),
    C(
        E + "denoising_objective",
        lambda: eq.denoising_objective(img(2, 1, 4, 4), img(2, 1, 4, 5), 0.1, 0.1),
        "output",
    ),
    C(
        E + "denoising_objective",
        lambda: eq.denoising_objective(img(2, 1, 4, 4), img(2, 1, 4, 4), -1, 0.1),
        "lam",
    ),
    C(
        E + "denoising_objective",
        lambda: eq.denoising_objective(img(2, 1, 4, 4), img(2, 1, 4, 4), 0.0, 0),
        "eps",
    ),
    C(
        E + "denoising_objective",
        lambda: eq.denoising_objective(nonfinite(img(2, 1, 4, 4)), img(2, 1, 4, 4), 0.1, 0.1),
        "output",
        note="nan",
    ),
    C(
        E + "denoising_objective",
        lambda: eq.denoising_objective(img(2, 1, 4, 4), img(2, 1, 4, 0), 0.1, 0.1),
        "target",
        note="empty",
    ),
    C(
        E + "denoising_objective",
        lambda: eq.denoising_objective(img(2, 1, 4, 4), img(2, 1, 4, 4).float(), 0.1, 0.1),
        "target",
        note="float32",
    ),
    C(E + "psnr", lambda: eq.psnr(img(2, 1, 4, 4), img(2, 1, 4, 5)), "estimate"),
    C(E + "psnr", lambda: eq.psnr(img(2, 1, 4, 4), img(2, 1, 4, 4), data_range=0), "data_range"),
    C(
        E + "psnr",
        lambda: eq.psnr(img(2, 1, 4, 4), img(2, 1, 4, 4), mask=torch.zeros(4, 4)),
        "mask",
    ),
    C(
        E + "psnr",
        lambda: eq.psnr(img(2, 1, 4, 4), img(2, 1, 4, 4), mask=2 * torch.ones(4, 4)),
        "mask",
        note="values",
    ),
    C(
        E + "psnr",
        lambda: eq.psnr(img(2, 1, 4, 4), img(2, 1, 4, 4), mask=torch.ones(3, 3)),
        "mask",
        note="shape",
    ),
    C(
        E + "psnr",
        lambda: eq.psnr(img(2, 1, 4, 4), img(2, 1, 4, 4), mask=torch.full((4, 4), NAN)),
        "mask",
        note="nan",
    ),
    C(
        E + "psnr",
        lambda: eq.psnr(nonfinite(img(2, 1, 4, 4)), img(2, 1, 4, 4)),
        "estimate",
        note="nan",
    ),
    C(E + "psnr", lambda: eq.psnr(img(2, 1, 4, 4), img(1, 4, 4)), "target"),
    C(
        E + "train_denoiser",
        lambda: eq.train_denoiser(3, img(4, 1, 4, 4), img(2, 1, 4, 4), **train_args()),
        "model",
    ),
    C(
        E + "train_denoiser",
        lambda: eq.train_denoiser(
            ordinary(), img(4, 1, 4, 4), img(2, 1, 4, 4), **train_args(noise=-1)
        ),
        "noise",
    ),
    C(
        E + "train_denoiser",
        lambda: eq.train_denoiser(
            ordinary(), img(4, 1, 4, 4), img(2, 1, 4, 4), **train_args(batch_size=0)
        ),
        "batch_size",
    ),
    C(
        E + "train_denoiser",
        lambda: eq.train_denoiser(
            ordinary(), img(4, 1, 4, 4), img(2, 1, 4, 4), **train_args(iterations=0)
        ),
        "iterations",
    ),
    C(
        E + "train_denoiser",
        lambda: eq.train_denoiser(ordinary(), img(4, 4, 4), img(2, 1, 4, 4), **train_args()),
        "clean",
    ),
    C(
        E + "sample_complexity",
        lambda: eq.sample_complexity(
            img(4, 1, 8, 8), img(2, 1, 8, 8), img(2, 1, 8, 8), [], **sc_args()
        ),
        "n_train",
    ),
    C(
        E + "sample_complexity",
        lambda: eq.sample_complexity(
            img(4, 1, 8, 8), img(2, 1, 8, 8), img(2, 1, 8, 8), [2], kinds=("unet",), **sc_args()
        ),
        "kinds",
    ),
    C(
        E + "sample_complexity",
        lambda: eq.sample_complexity(
            img(4, 3, 8, 8), img(2, 1, 8, 8), img(2, 1, 8, 8), [2], **sc_args()
        ),
        "clean",
    ),
    C(
        E + "sample_complexity",
        lambda: eq.sample_complexity(
            img(4, 1, 8, 8), img(2, 1, 8, 8), img(2, 1, 8, 8), [2], runs=0, **sc_args()
        ),
        "runs",
    ),
    # --- escnn bridge and the escnn denoiser ---
    C("escnn_bridge.gspace", lambda: eb.gspace("C4"), "group"),
    C(
        "escnn_bridge.escnn_kernel_basis",
        lambda: eb.escnn_kernel_basis(C4, "trivial", "trivial", 4),
        "size",
    ),
    C(
        "escnn_bridge.escnn_kernel_basis",
        lambda: eb.escnn_kernel_basis("C4", "trivial", "trivial", 3),
        "group",
    ),
    C(
        "escnn_bridge.escnn_kernel_basis",
        lambda: eb.escnn_kernel_basis(C4, "trivial", "trivial", 3, complete=1),
        "complete",
    ),
    C("escnn_bridge.escnn_representation", lambda: eb.escnn_representation(C4, "standard"), "kind"),
    C(
        "escnn_bridge.escnn_representation",
        lambda: eb.escnn_representation(C2, ("irrep", 3)),
        "kind",
        note="irrep",
    ),
    C(
        "escnn_bridge.escnn_precision",
        lambda: eb.escnn_precision(dtype=torch.int64).__enter__(),
        "dtype",
    ),
    # --- Section 5.1.2 over a group, 5.2 noise, 5.3.2 approximation ---
    C(
        E + "group_commutation_error",
        lambda: eq.group_commutation_error(torch.tanh, img(1, 1, 4, 4), "trivial"),
        "rho_in",
    ),
    C(
        E + "group_commutation_error",
        lambda: eq.group_commutation_error(torch.tanh, img(1, 1, 4, 4), TRIV, REG.matrices),
        "rho_out",
    ),
    C(
        E + "group_commutation_error",
        lambda: eq.group_commutation_error(
            torch.tanh, img(1, 1, 4, 4), TRIV, D4.representation("trivial")
        ),
        "rho_out",
        note="groups",
    ),
    C(
        E + "group_commutation_error",
        lambda: eq.group_commutation_error(1, img(1, 1, 4, 4), TRIV),
        "F",
    ),
    C(E + "add_noise", lambda: eq.add_noise(img(2, 4, 4), 0.1), "clean"),
    C(E + "add_noise", lambda: eq.add_noise(img(2, 1, 4, 4), -0.1), "noise"),
    C(E + "add_noise", lambda: eq.add_noise(img(2, 1, 4, 4), 0.1, 0), "generator"),
    C(E + "gradient_magnitude", lambda: eq.gradient_magnitude(img(4, 4)), "x"),
    C(E + "gradient_magnitude", lambda: eq.gradient_magnitude(img(1, 1, 4, 4), eps=0), "eps"),
    C(
        E + "fit_map",
        lambda: eq.fit_map(
            ordinary(), eq.gradient_magnitude, img(2, 1, 4, 4), iterations=0, batch_size=1
        ),
        "iterations",
    ),
    C(
        E + "fit_map",
        lambda: eq.fit_map(
            ordinary(), eq.gradient_magnitude, img(2, 1, 4, 4), iterations=1, batch_size=3
        ),
        "batch_size",
    ),
    C(
        E + "fit_map",
        lambda: eq.fit_map(ordinary(), "F", img(2, 1, 4, 4), iterations=1, batch_size=1),
        "target",
    ),
    C(
        E + "fit_map",
        lambda: eq.fit_map(
            ordinary(), eq.gradient_magnitude, img(2, 4, 4), iterations=1, batch_size=1
        ),
        "inputs",
    ),
    C(
        "equivariant_denoiser.EquivariantDenoiser",
        lambda: EquivariantDenoiser(8, 1, fields="x"),
        "fields",
    ),
    C(
        "equivariant_denoiser.EquivariantDenoiser",
        lambda: EquivariantDenoiser(8, 1, group_order=0),
        "group_order",
    ),
    C(
        "equivariant_denoiser.EquivariantDenoiser",
        lambda: EquivariantDenoiser(7, 1, fields="harmonic", max_order=-1),
        "max_order",
    ),
    C(
        "equivariant_denoiser.EquivariantDenoiser",
        lambda: EquivariantDenoiser(8, 1, init_scale=0),
        "init_scale",
    ),
    C("equivariant_denoiser.EquivariantDenoiser", lambda: EquivariantDenoiser(12, 1), "width"),
    C(
        "equivariant_denoiser.EquivariantDenoiser",
        lambda: EquivariantDenoiser(8, 1, dtype=torch.int64),
        "dtype",
    ),
    C(
        "equivariant_denoiser.EquivariantDenoiser",
        lambda: escnn_net()(img(1, 1, 5, 5)),
        "x",
        note="float64 into float32",
    ),
    C(
        "equivariant_denoiser.EquivariantDenoiser",
        lambda: escnn_net()(img(1, 2, 5, 5, dtype=torch.float32)),
        "x",
        note="channels",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, monkeypatch):
    run_case(case, monkeypatch)


EXEMPT = {
    "escnn_bridge.escnn_float64": "a context manager without arguments",
}


def test_every_public_name_has_a_case():
    check_coverage(
        CASES,
        [
            ("equivariant", "spdl_ref.equivariant"),
            ("escnn_bridge", "spdl_ref.equivariant.escnn_bridge"),
            ("equivariant_denoiser", "spdl_ref.equivariant.equivariant_denoiser"),
        ],
        EXEMPT,
    )


# --- hypothesis: bad images for the image functions and layers -----------------------------------

IMAGE_FUNCTIONS = {
    "rotate90": (lambda x: eq.rotate90(x), "x"),
    "reflect": (lambda x: eq.reflect(x), "x"),
    "rotate": (lambda x: eq.rotate(x, 30.0), "x"),
    "smoothed_tv": (lambda x: eq.smoothed_tv(x, 0.1), "u"),
    "psnr": (lambda x: eq.psnr(x, img(2, 1, 4, 4)), "estimate"),
    "denoising_objective": (
        lambda x: eq.denoising_objective(img(2, 1, 4, 4), x, 0.1, 0.1),
        "target",
    ),
    "SteerableConv2d": (lambda x: conv()(x), "x"),
    "OrdinaryDenoiser": (lambda x: ordinary()(x), "x"),
}


class _NoEnv:
    def setenv(self, *args):  # pragma: no cover - hypothesis cases set no environment
        raise AssertionError("no environment in hypothesis cases")


@pytest.mark.parametrize("name", sorted(IMAGE_FUNCTIONS))
@given(value=st.sampled_from([NAN, INF, -INF]), where=st.integers(0, 10_000))
def test_non_finite_images_are_refused(name, value, where):
    fn, arg = IMAGE_FUNCTIONS[name]
    x = img(2, 1, 4, 4)
    x.view(-1)[where % x.numel()] = value
    run_case(Case(name, lambda: fn(x), arg), _NoEnv())


@pytest.mark.parametrize("name", sorted(IMAGE_FUNCTIONS))
@given(dtype=st.sampled_from([torch.int64, torch.bool, torch.uint8]))
def test_images_of_integer_dtype_are_refused(name, dtype):
    fn, arg = IMAGE_FUNCTIONS[name]
    run_case(Case(name, lambda: fn(img(2, 1, 4, 4).to(dtype)), arg), _NoEnv())


@given(
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=5).filter(
        lambda s: len(s) != 4 or 0 in s
    )
)
def test_images_that_are_not_4d_or_are_empty_are_refused(shape):
    x = torch.zeros(shape, dtype=D)
    run_case(Case("smoothed_tv", lambda: eq.smoothed_tv(x, 0.1), "u"), _NoEnv())
    run_case(Case("psnr", lambda: eq.psnr(x, x), "estimate"), _NoEnv())
