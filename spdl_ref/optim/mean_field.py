r"""Mean-field two-layer ReLU networks, Section 6.3, eqs. (61)-(63) and Theorem 6.1.

The network (61) averages :math:`J` neurons,

.. math::

    \Phi(\theta, x) = \frac1J \sum_{j=1}^J c_j \max\{a_j^T x + b_j, 0\},
    \qquad \theta_j = (a_j, b_j, c_j) \in \mathbb{R}^{M+2},

so it is the integral of :math:`f(\cdot, x)` against the empirical measure
:math:`\mu_J = \frac1J\sum_j \delta_{\theta_j}` of the particles. Since
:math:`\nabla_{\theta_j} E = O(1/J)`, the particle gradient flow (62) runs with the mean-field
time scaling :math:`\dot\theta_j = -J\, \nabla_{\theta_j} E(\theta)`, which is the Wasserstein
gradient flow of (63) restricted to empirical measures. Theorem 6.1 starts the particles on the cone
:math:`|c|^2 = \|a\|^2 + |b|^2`; by the 1-homogeneity of the ReLU, the unregularised flow keeps
:math:`|c_j|^2 - \|a_j\|^2 - |b_j|^2` constant for every particle.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import _validate
from ..loop import History, train_loop

__all__ = ["MeanFieldReLU", "nested_deviation", "particle_distance", "train_mean_field"]

#: The output scalings of :class:`MeanFieldReLU`.
SCALINGS = ("mean_field", "ntk")


class MeanFieldReLU(nn.Module):
    r"""The two-layer ReLU network (61) with :math:`J` neurons and mean-field :math:`1/J` scaling.

    Parameters
    ----------
    M : int
        Input dimension (:math:`x \in \mathbb{R}^M`).
    J : int
        Number of neurons (particles).
    scale : float
        Standard deviation of the Gaussian draw of :math:`(a_j, b_j)`.
    generator : torch.Generator, optional
        Seeds the initialisation (drawn on the CPU, then moved to ``device``).
    scaling : {"mean_field", "ntk"}
        The output scale :math:`\alpha_J` of :math:`\Phi = \alpha_J\sum_j f(\theta_j, \cdot)`:
        :math:`1/J`, the mean-field network (61) of Theorem 6.1 (default), or :math:`1/\sqrt J`,
        the neural-tangent (lazy) scaling, for comparison.
    device, dtype : optional
        Of the parameters.

    Notes
    -----
    Neuron :math:`j` is drawn on its own, after neurons :math:`0, \dots, j-1`, so it depends
    only on :math:`j` and the generator's state: from the same seed, the network with
    :math:`2J` neurons contains the :math:`J` particles of the one with :math:`J` as its first
    rows, for every :math:`M` and :math:`J` (nested runs, as the comparison of Theorem 6.1
    needs). The initialisation satisfies the hypothesis of Theorem 6.1: :math:`(a_j, b_j)` are
    Gaussian and :math:`c_j = \pm\sqrt{\|a_j\|^2 + b_j^2}` with a random sign, so every particle
    lies on the cone. :meth:`particles` returns the :math:`J \times (M+2)` matrix of rows
    :math:`(a_j, b_j, c_j)`.
    """

    def __init__(
        self,
        M: int,
        J: int,
        scale: float = 1.0,
        generator: torch.Generator | None = None,
        *,
        scaling: str = "mean_field",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        M = _validate.positive_int(M, "M")
        J = _validate.positive_int(J, "J")
        scale = _validate.positive_real(scale, "scale")
        self.scaling = _validate.choice(scaling, SCALINGS, "scaling")
        _validate.generator(generator)
        _validate.float_dtype(dtype)
        dtype = dtype or torch.get_default_dtype()
        # One draw per neuron: torch.randn fills long tensors in another order than short ones,
        # so a single (J, M + 2) draw would make row j depend on J as well.
        where = generator.device if generator is not None else "cpu"
        z = torch.stack(
            [torch.randn(M + 2, generator=generator, dtype=dtype, device=where) for _ in range(J)]
        )
        ab = scale * z[:, : M + 1]
        sign = torch.where(z[:, M + 1] >= 0, 1.0, -1.0).to(dtype)
        c = sign * ab.norm(dim=1)
        self.M, self.J = M, J
        self.a = nn.Parameter(ab[:, :M].to(device))
        self.b = nn.Parameter(ab[:, M].to(device))
        self.c = nn.Parameter(c.to(device))

    @classmethod
    def from_particles(cls, P: torch.Tensor, *, scaling: str = "mean_field") -> MeanFieldReLU:
        r"""The network (61) whose particles are the rows :math:`(a_j, b_j, c_j)` of ``P``, a
        :math:`J \times (M+2)` matrix as :meth:`particles` returns it (Section 6.3); on ``P``'s
        device and dtype."""
        _validate.floating_tensor(P, "P")
        if P.dim() != 2 or P.shape[1] < 3:
            raise ValueError(f"P must have shape (J, M + 2) with M >= 1, got {tuple(P.shape)}")
        J, M = P.shape[0], P.shape[1] - 2
        net = cls(M, J, scaling=scaling, device=P.device, dtype=P.dtype)
        with torch.no_grad():
            net.a.copy_(P[:, :M])
            net.b.copy_(P[:, M])
            net.c.copy_(P[:, M + 1])
        return net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\Phi(\theta, x)` of (61) for ``x`` of shape ``(N, M)``; returns shape
        ``(N,)``."""
        _validate.last_dim(x, self.M, "x")
        return torch.relu(x @ self.a.T + self.b) @ self.c * self.alpha

    @property
    def alpha(self) -> float:
        r"""The output scale :math:`\alpha_J`: :math:`1/J` (mean field, (61)) or :math:`1/\sqrt J`
        (NTK)."""
        return 1.0 / self.J if self.scaling == "mean_field" else self.J**-0.5

    def particles(self) -> torch.Tensor:
        r"""The particles :math:`\theta_j = (a_j, b_j, c_j) \in \mathbb{R}^{M+2}` as rows (Section
        6.3)."""
        return torch.cat([self.a, self.b[:, None], self.c[:, None]], dim=1).detach()

    def particle_velocities(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r"""The velocity of every particle under the flow (62) for the squared loss, as rows
        (Section 6.3).

        Row :math:`j` is :math:`\dot\theta_j = -\frac{1}{J\alpha_J^2}\nabla_{\theta_j}E` with
        :math:`E = \frac{1}{2N}\sum_n(\Phi(x_n) - y_n)^2`: :math:`-J\nabla_{\theta_j}E` for the
        mean-field scaling (the Wasserstein gradient field of (63) at the particle), a
        :math:`J \times (M+2)` matrix in the layout of :meth:`particles`. One step of
        :func:`train_mean_field` without regulariser moves the particles by ``lr`` times it.
        """
        _validate.tensor(x, "x")
        _validate.tensor(y, "y")
        if x.dim() != 2 or y.shape != (x.shape[0],):
            raise ValueError(
                f"x must have shape (N, M) and y shape (N,), got {tuple(x.shape)} and "
                f"{tuple(y.shape)}"
            )
        with torch.enable_grad():
            E = 0.5 * (self(x) - y).pow(2).mean()
            da, db, dc = torch.autograd.grad(E, (self.a, self.b, self.c))
        rate = 1.0 / (self.J * self.alpha**2)
        return -rate * torch.cat([da, db[:, None], dc[:, None]], dim=1)

    def cone_defect(self) -> torch.Tensor:
        r"""Per particle, :math:`|c_j|^2 - \|a_j\|^2 - |b_j|^2` (zero on the cone of Theorem
        6.1)."""
        with torch.no_grad():
            return self.c**2 - self.a.pow(2).sum(1) - self.b**2


def train_mean_field(
    model: MeanFieldReLU,
    x: torch.Tensor,
    y: torch.Tensor,
    lr: float,
    steps: int,
    lam: float = 0.0,
    snapshots: int = 0,
) -> History:
    r"""Forward Euler for the particle flow (62) with the mean-field scaling, Section 6.3.

    Minimises :math:`E = \frac{1}{2N}\sum_n (\Phi(\theta, x_n) - y_n)^2 + \frac{\lambda}{J}\sum_j
    \|\theta_j\|^2` (the discrete form of (63)) by
    :math:`\theta_j \leftarrow \theta_j - h\, J \nabla_{\theta_j} E`: plain gradient descent
    with step :math:`hJ` (for a network with the NTK scaling, ``scaling="ntk"``, the step is
    :math:`h/(J\alpha_J^2) = h`, the rate at which the function moves independently of
    :math:`J` in both scalings), run by :func:`spdl_ref.train.train_loop` (whose guard stops a step
    :math:`h` so large that the flow blows up). ``snapshots`` evenly spaced copies of the
    particles (plus the first and the last) are kept.

    Returns
    -------
    spdl_ref.train.History
        ``loss``: :math:`E` before each step; ``series["snapshot_steps"]`` and
        ``series["snapshots"]``: the steps :math:`k` and the particles after :math:`k` steps
        (:meth:`MeanFieldReLU.particles`, on the CPU; only with ``snapshots > 0``).
    """
    if not isinstance(model, MeanFieldReLU):
        raise TypeError(f"model must be a MeanFieldReLU, got {type(model).__name__}")
    _validate.tensor(x, "x")
    _validate.tensor(y, "y")
    if x.dim() != 2 or y.shape != (x.shape[0],):
        raise ValueError(
            f"x must have shape (N, M) and y shape (N,), got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    lr = _validate.positive_real(lr, "lr")
    steps = _validate.positive_int(steps, "steps")
    lam = _validate.nonnegative_real(lam, "lam")
    snapshots = _validate.nonnegative_int(snapshots, "snapshots")
    _validate.like(x, model.a, "x", "model")
    _validate.like(y, model.a, "y", "model")
    keep = set()
    if snapshots:
        keep = {round(i * steps / (snapshots + 1)) for i in range(snapshots + 2)}
    params = {"a": model.a, "b": model.b, "c": model.c}
    first = model.particles().cpu() if 0 in keep else None

    def objective(_):
        loss = 0.5 * (model(x) - y).pow(2).mean()
        if lam > 0:
            loss = loss + lam * sum(p.pow(2).sum() for p in params.values()) / model.J
        return loss

    def snapshot(i, history):
        if i == 0 and first is not None:
            history.record(snapshot_steps=0, snapshots=first)
        if i + 1 in keep:
            history.record(snapshot_steps=i + 1, snapshots=model.particles().cpu())

    return train_loop(
        params,
        objective,
        iterations=steps,
        optimizer=torch.optim.SGD(list(params.values()), lr=lr / (model.J * model.alpha**2)),
        callbacks=[snapshot],
    )


def particle_distance(P: torch.Tensor, Q: torch.Tensor) -> float:
    r"""Quadratic Wasserstein distance :math:`W_2` between the empirical measures of the rows of
    ``P`` and ``Q`` (Section 6.3, Theorem 6.1), exact by optimal assignment.

    The numbers of rows may differ when one divides the other (e.g. :math:`J` and :math:`2J`):
    each measure is then repeated to the least common size, which leaves it unchanged.
    """
    import math

    from scipy.optimize import linear_sum_assignment

    _validate.tensor(P, "P")
    _validate.tensor(Q, "Q")
    if P.dim() != 2 or Q.dim() != 2 or P.shape[1] != Q.shape[1]:
        raise ValueError(
            f"P and Q must be (n, d) and (m, d), got {tuple(P.shape)} and {tuple(Q.shape)}"
        )
    n = math.lcm(P.shape[0], Q.shape[0])
    P = P.repeat(n // P.shape[0], 1)
    Q = Q.repeat(n // Q.shape[0], 1)
    C = torch.cdist(P.double().cpu(), Q.double().cpu()).pow(2).numpy()
    rows, cols = linear_sum_assignment(C)
    return float(C[rows, cols].mean() ** 0.5)


def nested_deviation(P: torch.Tensor, Q: torch.Tensor) -> float:
    r"""Root-mean-square distance between the shared particles of two nested runs (Section 6.3,
    Theorem 6.1).

    ``P`` holds the :math:`J` particles of one run and ``Q`` the :math:`J' \ge J` of a run
    started from a nested initialisation (its first :math:`J` rows started where ``P``'s did,
    :class:`MeanFieldReLU`). Returns
    :math:`\big(\frac1J\sum_{j=1}^J\|P_j - Q_j\|^2\big)^{1/2}`: how differently the same
    particle has moved in the two networks (zero at :math:`t = 0`). It bounds
    :math:`W_2` between the empirical measures of the shared particles from above.
    """
    _validate.tensor(P, "P")
    _validate.tensor(Q, "Q")
    if P.dim() != 2 or Q.dim() != 2 or P.shape[1] != Q.shape[1] or Q.shape[0] < P.shape[0]:
        raise ValueError(
            f"P and Q must be (J, d) and (J', d) with J' >= J, got {tuple(P.shape)} and "
            f"{tuple(Q.shape)}"
        )
    J = P.shape[0]
    return float((P - Q[:J].to(P)).pow(2).sum(1).mean().sqrt())
