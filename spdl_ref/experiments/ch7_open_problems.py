r"""The experiments of Chapter 7 on the open problems of Section 6.4 of the review.

* :func:`port_hamiltonian_comparison` (Section 6.4.1): the damped system (55) integrated by the
  discrete-gradient scheme of :mod:`spdl_ref.optim.port_hamiltonian` and by the conformal
  symplectic scheme of Section 6.1, on the camelback function of Figure 4, over step sizes;
  and the power balance with an input port;
* :func:`natural_gradient_rates` (Section 6.4.2): observed and predicted local rates of
  gradient descent, natural gradient and Gauss--Newton near a minimum of a small network's
  squared loss (:mod:`spdl_ref.optim.local_rates`), with and without residual, and the residual
  rate of natural gradient in the overparameterised regime;
* :func:`metric_flows` (Section 6.4.3): the Wasserstein and the Fisher--Rao gradient flows of
  a two-layer ReLU network's particle measure (Sections 6.3 and
  :mod:`spdl_ref.optim.fisher_rao`) on a small regression problem: what each does to the
  particles and to the test error. Registered as ``ch7_metric_flows`` (a sweep over widths
  and seeds).

Every function takes ``budget`` (``"ci"`` or ``"paper"``) and ``device`` and builds its data and
models there.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .. import _validate
from ..config import BUDGETS
from ..config import device as default_device
from ..invertible import observed_contraction_rate
from ..loop import NonFiniteError, train_loop
from ..optim import (
    ConformalHamiltonian,
    MeanFieldReLU,
    camelback,
    fisher_squared_loss,
    gauss_newton_step,
    kinetic_energy,
    natural_gradient_step,
    particle_distance,
    squared_error,
    train_mean_field,
)
from ..optim.fisher_rao import FisherRaoDescent, ReweightedReLU
from ..optim.local_rates import linearised_rate, loss_hessian, observed_order
from ..optim.port_hamiltonian import port_hamiltonian_descent
from ..optim.test_functions import CAMELBACK_START
from ._registry import Experiment, register, save_figure

__all__ = ["metric_flows", "natural_gradient_rates", "port_hamiltonian_comparison"]

F64 = torch.float64


def _setting(budget: str, device: torch.device | str | None) -> torch.device:
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    return torch.device(default_device() if device is None else device)


# --------------------------------------------------------------------------------------------
# Section 6.4.1: port-Hamiltonian descent against the conformal symplectic scheme


def _conformal_run(theta0, h, gamma, mass, steps):
    """Energies H_k = E(theta_k) + T(p_k) along ConformalHamiltonian on the camelback function,
    and the step where it stopped with a non-finite value (None if it did not)."""
    theta = theta0.clone().requires_grad_(True)
    opt = ConformalHamiltonian([theta], lr=h, gamma=gamma, mass=mass)
    energy = [float(camelback(theta.detach()))]
    path = [theta.detach().clone()]

    def record(i, history):
        with torch.no_grad():
            p = opt.state[theta]["momentum"]
            energy.append(float(camelback(theta) + kinetic_energy(p, mass)))
            path.append(theta.detach().clone())

    diverged = None
    try:
        train_loop(
            {"theta": theta},
            lambda _: camelback(theta),
            iterations=steps,
            optimizer=opt,
            callbacks=[record],
        )
    except NonFiniteError as err:
        diverged = err.iteration
    if not all(math.isfinite(e) for e in energy):
        first = next(k for k, e in enumerate(energy) if not math.isfinite(e))
        diverged = first if diverged is None else min(diverged, first)
        energy = energy[:first]
        path = path[:first]
    return torch.tensor(energy, dtype=F64), torch.stack(path), diverged


def port_hamiltonian_comparison(
    *,
    budget: str,
    device: torch.device | str | None = None,
    steps: int | None = None,
    step_sizes: tuple[float, ...] = (0.05, 0.2, 0.5, 0.8, 1.0, 1.5),
    gamma: float = 1.0,
    mass: float = 1.0,
    seed: int = 0,
) -> dict:
    r"""Discrete-gradient (port-Hamiltonian) and conformal symplectic descent on the camelback
    function of Figure 4, from its start :math:`(-0.5, 0.8)` at rest (Section 6.4.1).

    Both integrate (55) with friction :math:`\gamma` and mass :math:`\mu` for ``steps`` steps
    (``ci``: 150, ``paper``: 600) at each step size. Then, at :math:`h = 0.2`, the
    discrete-gradient scheme with a random force on the momentum as input (a stand-in for
    minibatch gradient noise, decaying like :math:`k^{-1/2}`).

    Returns
    -------
    dict
        ``"steps"``; ``"dg"`` and ``"conformal"``: for each step size (a ``str`` key) a dict
        with ``"energy"`` (the :math:`H_k`, a list), ``"max_rise"`` (the largest
        :math:`H_{k+1} - H_k`), ``"distance"`` (final distance to the global minimum
        :math:`(0, 0)`, ``inf`` after divergence); for ``"dg"`` also ``"balance_defect"`` and
        ``"newton"`` (mean Newton iterations per step); for ``"conformal"`` ``"diverged"`` (the
        step where the iterates overflowed, or ``None``). ``"port"``: ``"balance_defect"``,
        ``"supplied"``, ``"dissipated"`` (totals), ``"supplied_per_step"``,
        ``"dissipated_per_step"``, ``"rises"`` (steps where :math:`H` rose) and ``"energy"``.
    """
    dev = _setting(budget, device)
    if steps is None:
        steps = 150 if budget == "ci" else 600
    steps = _validate.positive_int(steps, "steps")
    theta0 = torch.tensor(CAMELBACK_START, dtype=F64, device=dev)
    out: dict = {"steps": steps, "dg": {}, "conformal": {}}
    for h in step_sizes:
        run = port_hamiltonian_descent(camelback, theta0, h, gamma, steps, mass)
        out["dg"][str(h)] = {
            "energy": run.energy.tolist(),
            "max_rise": float(run.energy.diff().max()),
            "balance_defect": run.balance_defect(),
            "distance": float(run.theta[-1].norm()),
            "newton": sum(run.iterations) / steps,
        }
        energy, path, diverged = _conformal_run(theta0, h, gamma, mass, steps)
        out["conformal"][str(h)] = {
            "energy": energy.tolist(),
            "max_rise": float(energy.diff().max()) if diverged is None else math.inf,
            "distance": float(path[-1].norm()) if diverged is None else math.inf,
            "diverged": diverged,
        }
    g = torch.Generator(device=dev).manual_seed(seed)
    forces = [
        0.5 * torch.randn(2, generator=g, dtype=F64, device=dev) / math.sqrt(k + 1)
        for k in range(steps)
    ]
    run = port_hamiltonian_descent(camelback, theta0, 0.2, gamma, steps, mass, inputs=forces)
    out["port"] = {
        "balance_defect": run.balance_defect(),
        "supplied": float(run.supplied.sum()),
        "dissipated": float(run.dissipated.sum()),
        "supplied_per_step": run.supplied.tolist(),
        "dissipated_per_step": run.dissipated.tolist(),
        "rises": int((run.energy.diff() > 0).sum()),
        "energy": run.energy.tolist(),
    }
    return out


# --------------------------------------------------------------------------------------------
# Section 6.4.2: local rates of gradient descent, natural gradient and Gauss-Newton


def _vector(model):
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def _tanh_net(M, W, generator, device):
    net = nn.Sequential(nn.Linear(M, W), nn.Tanh(), nn.Linear(W, 1)).to(device=device, dtype=F64)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=F64, device=device))
    return net


def _descend(model, x, y, method, h, steps, monitor):
    """Run ``steps`` of gradient descent, natural gradient or Gauss-Newton (damping 0) on the
    squared loss through the one training loop; ``monitor(model)`` after every step."""
    values = [monitor(model)]

    def objective(_):
        return squared_error(model, x, y)

    def record(i, history):
        values.append(monitor(model))

    if method == "gd":
        optimizer = torch.optim.SGD(model.parameters(), lr=h)
        train_loop(model, objective, iterations=steps, callbacks=[record], optimizer=optimizer)
    else:

        def step(evaluate):
            evaluate()
            natural_gradient_step(model, x, y, lr=h)

        train_loop(model, objective, iterations=steps, callbacks=[record], step=step)
    return torch.tensor(values, dtype=F64)


def natural_gradient_rates(
    *, budget: str, device: torch.device | str | None = None, seed: int = 0
) -> dict:
    r"""Local rates of descent methods near a minimum of a small network's squared loss
    (Section 6.4.2).

    A teacher network :math:`x \mapsto w^T\tanh(Ax + b) + c` (3 inputs, 2 hidden units; 64
    samples at ``ci``, 256 at ``paper``; Gaussian weights and inputs drawn from ``seed``) makes
    the targets, either exactly (a zero-residual minimum at the teacher) or with noise of
    standard deviation 0.1 (the minimum is found from the teacher by 50 Levenberg--Marquardt
    steps with damping :math:`10^{-3}` and 50 Gauss--Newton steps). From the
    minimum :math:`\theta^*` moved by :math:`10^{-3}(1 + \|\theta^*\|)` in a random direction,
    three methods run: gradient descent with :math:`h = 1/\lambda_{\max}(\nabla^2E)`,
    natural gradient (60) with :math:`h = 0.5` and Gauss--Newton (:math:`h = 1`), the last two
    with the Fisher metric of Section 6.2.2 and no damping. For each the rate predicted by
    :func:`~spdl_ref.optim.local_rates.linearised_rate` is compared with the observed error
    curve.

    Then an overparameterised student (16 hidden units, 16 samples, more parameters than
    residuals) from a random start: natural gradient at :math:`h = 0.5` and the observed
    contraction of the residual norm, which the linearisation predicts to be :math:`1 - h`
    whenever the Jacobian has full row rank (the regime of Zhang, Martens and Grosse).

    Returns
    -------
    dict
        ``"zero"`` and ``"noisy"``: per case ``"kappa"`` (condition number of the Hessian),
        ``"grad_norm"`` (at :math:`\theta^*`), ``"min_eig"`` (of the Hessian),
        ``"hessian_minus_fisher"`` (largest entry of :math:`|\nabla^2E - G|`) and per method
        (``"gd"``, ``"ngd"``, ``"gn"``) ``"h"``, ``"predicted"`` (:math:`\rho`),
        ``"observed"`` (geometric-mean rate over the second half of the useful errors),
        ``"deviation"`` (largest relative gap between the error curve and that of the linear
        iteration), ``"order"`` (:func:`~spdl_ref.optim.local_rates.observed_order`, where three
        errors lie above the floor) and ``"errors"``. ``"overparameterised"``: ``"parameters"``,
        ``"residuals"``, ``"predicted"``, ``"observed"`` (residual rate) and ``"residual"``.
    """
    dev = _setting(budget, device)
    M, W, N = (3, 2, 64) if budget == "ci" else (3, 2, 256)
    gd_steps = 3000
    g = torch.Generator(device=dev).manual_seed(seed)
    teacher = _tanh_net(M, W, g, dev)
    x = torch.randn(N, M, generator=g, dtype=F64, device=dev)
    with torch.no_grad():
        clean = teacher(x)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=g, dtype=F64, device=dev)
    out: dict = {}
    for case, y in (("zero", clean), ("noisy", noisy)):
        net = copy.deepcopy(teacher)
        if case == "noisy":  # Levenberg-Marquardt from the teacher, then plain Gauss-Newton
            for k in range(100):
                gauss_newton_step(net, x, y, damping=1e-3 if k < 50 else 0.0)
        star = _vector(net)
        grads = torch.autograd.grad(squared_error(net, x, y), list(net.parameters()))
        H = loss_hessian(net, x, y)
        G = fisher_squared_loss(net, x)
        eig = torch.linalg.eigvalsh(H)
        res: dict[str, object] = {
            "kappa": float(eig[-1] / eig[0]),
            "min_eig": float(eig[0]),
            "grad_norm": float(torch.cat([v.flatten() for v in grads]).norm()),
            "hessian_minus_fisher": float((H - G).abs().max()),
        }
        delta = torch.randn(star.shape, generator=g, dtype=F64, device=dev)
        delta = 1e-3 * (1 + float(star.norm())) * delta / delta.norm()
        floor = 1e-12 * (1 + float(star.norm()))
        for method, h, metric, steps in (
            ("gd", 1.0 / float(eig[-1]), None, gd_steps),
            ("ngd", 0.5, G, 60),
            ("gn", 1.0, G, 60),
        ):
            rho, iteration = linearised_rate(H, h, metric)
            student = copy.deepcopy(net)
            torch.nn.utils.vector_to_parameters(star + delta, student.parameters())
            errors = _descend(
                student,
                x,
                y,
                "gd" if method == "gd" else "ngd",
                h,
                steps,
                lambda m, star=star: float((_vector(m) - star).norm()),
            )
            linear_norms = [float(delta.norm())]
            e = delta.clone()
            for _ in range(steps):
                e = iteration @ e
                linear_norms.append(float(e.norm()))
            linear = torch.tensor(linear_norms, dtype=F64)
            ok = (errors > floor) & (linear > floor)
            deviation = float(((errors[ok] - linear[ok]).abs() / linear[ok]).max())
            try:
                order = observed_order(errors, floor)
            except ValueError:
                order = math.nan
            res[method] = {
                "h": h,
                "predicted": rho,
                "observed": observed_contraction_rate(errors, floor=floor),
                "deviation": deviation,
                "order": order,
                "errors": errors.tolist(),
            }
        out[case] = res
    # overparameterised: more parameters than residuals
    wide = _tanh_net(M, 16, g, dev)
    xs = x[:16]
    ys = noisy[:16]

    def residual_norm(m):
        with torch.no_grad():
            return float((m(xs) - ys).norm())

    residual = _descend(wide, xs, ys, "ngd", 0.5, 12, residual_norm)
    out["overparameterised"] = {
        "parameters": sum(p.numel() for p in wide.parameters()),
        "residuals": ys.numel(),
        "predicted": 0.5,
        "observed": float((residual[-1] / residual[0]) ** (1 / (len(residual) - 1))),
        "residual": residual.tolist(),
    }
    return out


# --------------------------------------------------------------------------------------------
# Section 6.4.3: Wasserstein and Fisher-Rao gradient flows of the particle measure


def _target(x):
    """The regression target of Chapter 6's mean-field experiment."""
    t = x[:, 0]
    return t.abs() - 0.5 * t**2 + 0.3 * torch.sin(3 * t)


def _flow_data(device):
    g = torch.Generator(device=device).manual_seed(100)
    x_train = 2 * torch.rand(20, 1, generator=g, dtype=F64, device=device) - 1
    y_train = _target(x_train) + 0.05 * torch.randn(20, generator=g, dtype=F64, device=device)
    x_test = torch.linspace(-1, 1, 201, dtype=F64, device=device)[:, None]
    return x_train, y_train, x_test, _target(x_test)


def _kinks(particles):
    """Per neuron c max{a x + b, 0} (M = 1): its kink -b/a and its slope c|a|."""
    a, b, c = particles[:, 0], particles[:, 1], particles[:, 2]
    return (-b / a).tolist(), (c * a.abs()).tolist()


def metric_flows(
    *,
    J: int,
    seed: int,
    budget: str,
    device: torch.device | str | None = None,
    steps: int | None = None,
) -> dict:
    r"""The Wasserstein and the Fisher--Rao gradient flow of one initial particle measure
    (Section 6.4.3).

    Data: 20 points :math:`x_n` uniform in :math:`[-1, 1]` with targets
    :math:`|x| - x^2/2 + 0.3\sin 3x` plus Gaussian noise of standard deviation 0.05 (the same
    for every task); the test error is the mean squared error against the noiseless target on
    201 points of :math:`[-1, 1]`. The particles :math:`\theta_j = (a_j, b_j, c_j)` start on the
    cone of Theorem 6.1 (:class:`~spdl_ref.optim.MeanFieldReLU`, generator seed ``seed``). Both
    flows minimise :math:`E = \frac{1}{2N}\sum_n (\Phi(x_n) - y_n)^2` (no regulariser) with the
    same time step :math:`h = 0.05` for ``steps`` steps (``ci``: 2000, ``paper``: 4000), so
    they reach the same time :math:`t`: the Wasserstein flow moves the particles with equal
    weights (:func:`~spdl_ref.optim.train_mean_field`), the Fisher--Rao flow keeps them and
    moves weight (:class:`~spdl_ref.optim.fisher_rao.FisherRaoDescent`).

    Returns
    -------
    dict
        ``"t"``; ``"initial_test"``; per flow (prefix ``"w_"`` or ``"fr_"``)
        ``"train"`` (final :math:`E`), ``"test"``, and ``"w_moved"`` (:math:`W_2` between the
        initial and final particle measures), ``"fr_effective"``
        (:math:`1/\sum_j w_j^2`), ``"fr_mass_error"`` (:math:`|\sum_j w_j - 1|`),
        ``"fr_min_weight"``; for the figure ``"x_test"``, ``"target"`` (noiseless, on
        ``x_test``), ``"x_train"``, ``"y_train"``, ``"w_curve"``, ``"fr_curve"``, the
        kinks and slopes of the particles (``"w_kinks"``, ``"w_slopes"``, ``"fr_kinks"``,
        ``"fr_slopes"``) and the Fisher--Rao weights ``"fr_weights"``.
    """
    dev = _setting(budget, device)
    J = _validate.positive_int(J, "J")
    seed = _validate.nonnegative_int(seed, "seed")
    if steps is None:
        steps = 2000 if budget == "ci" else 4000
    steps = _validate.positive_int(steps, "steps")
    h = 0.05
    x_train, y_train, x_test, y_test = _flow_data(dev)
    # The neurons are drawn on the CPU from a CPU generator (the same start on every device),
    # then moved to ``dev``; the context keeps that draw on the CPU whatever torch's default
    # device is (tests/test_devices_meta.py runs with "meta").
    with torch.device("cpu"):
        wasserstein = MeanFieldReLU(
            1, J, generator=torch.Generator().manual_seed(seed), device=dev, dtype=F64
        )
    initial = wasserstein.particles().clone()
    fisher_rao = ReweightedReLU.from_mean_field(wasserstein)
    with torch.no_grad():
        initial_test = float((wasserstein(x_test) - y_test).pow(2).mean())
    w_history = train_mean_field(wasserstein, x_train, y_train, lr=h, steps=steps)
    fr_history = train_loop(
        {"weights": fisher_rao.weights},
        lambda _: 0.5 * (fisher_rao(x_train) - y_train).pow(2).mean(),
        iterations=steps,
        optimizer=FisherRaoDescent([fisher_rao.weights], lr=h),
    )
    with torch.no_grad():
        w_curve = wasserstein(x_test)
        fr_curve = fisher_rao(x_test)
        w_train = float(0.5 * (wasserstein(x_train) - y_train).pow(2).mean())
        fr_train = float(0.5 * (fisher_rao(x_train) - y_train).pow(2).mean())
        weights = fisher_rao.weights.detach()
    w_kinks, w_slopes = _kinks(wasserstein.particles().cpu())
    fr_kinks, fr_slopes = _kinks(fisher_rao.particles.cpu())
    return {
        "t": h * steps,
        "initial_test": initial_test,
        "w_train": w_train,
        "w_test": float((w_curve - y_test).pow(2).mean()),
        "w_moved": particle_distance(initial, wasserstein.particles()),
        "w_train_start": w_history.loss[0],
        "fr_train": fr_train,
        "fr_test": float((fr_curve - y_test).pow(2).mean()),
        "fr_train_start": fr_history.loss[0],
        "fr_effective": fisher_rao.effective_size(),
        "fr_mass_error": abs(float(weights.sum()) - 1.0),
        "fr_min_weight": float(weights.min()),
        "x_test": x_test[:, 0].tolist(),
        "target": y_test.tolist(),
        "x_train": x_train[:, 0].tolist(),
        "y_train": y_train.tolist(),
        "w_curve": w_curve.tolist(),
        "fr_curve": fr_curve.tolist(),
        "w_kinks": w_kinks,
        "w_slopes": w_slopes,
        "fr_kinks": fr_kinks,
        "fr_slopes": fr_slopes,
        "fr_weights": weights.tolist(),
    }


def _flow_tasks(budget, runs, seed):
    widths = [4, 16, 64, 256] if budget == "ci" else [4, 16, 64, 256, 1024]
    return [{"seed": seed + r, "J": J} for J in widths for r in range(runs)]


def _flow_run(task, *, budget, device):
    return metric_flows(
        J=task["J"], seed=task["seed"], budget=budget, device=device, steps=task.get("steps")
    )


def _flow_plot(tasks, results, out_dir):
    """Test error against the width J for both flows (mean and range over seeds)."""
    import matplotlib.pyplot as plt

    from ..plotting import plain_log_ticks

    widths = sorted({t["J"] for t in tasks})
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for key, label in (("w_test", "Wasserstein"), ("fr_test", "Fisher-Rao")):
        vals = [
            [r[key] for t, r in zip(tasks, results, strict=True) if t["J"] == J] for J in widths
        ]
        mean = [sum(v) / len(v) for v in vals]
        ax.loglog(widths, mean, "o-", label=label)
        ax.fill_between(widths, [min(v) for v in vals], [max(v) for v in vals], alpha=0.2)
    ax.set(xlabel="particles J", ylabel="test error")
    plain_log_ticks(ax, "x", widths)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, out_dir, "metric_flows.png", dpi=120)


METRIC_FLOWS = register(
    Experiment(
        name="ch7_metric_flows",
        description=(
            "Section 6.4.3: Wasserstein vs Fisher-Rao gradient flows of a two-layer ReLU "
            "network's particle measure, test error over widths and seeds"
        ),
        chapter="chapters/ch7_open_problems",
        tasks=_flow_tasks,
        run=_flow_run,
        plot=_flow_plot,
        smoke=lambda seed: {"seed": seed, "J": 4, "steps": 5},
    )
)
