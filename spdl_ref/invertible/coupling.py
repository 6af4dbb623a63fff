r"""Coupling layers, Section 4.1.1, eqs. (42)-(43).

The input :math:`x` is split by a binary mask :math:`m` into the part :math:`x_1 = m \odot x`
that passes unchanged and the part :math:`x_2` that is transformed by a coupling law
:math:`\gamma` invertible in its first argument, conditioned on :math:`f(x_1)`:

.. math:: y_1 = x_1, \qquad y_2 = \gamma(x_2, f(x_1)), \qquad
          x_2 = \gamma^{-1}(y_2, f(y_1)).

The sub-network :math:`f` is arbitrary (a small MLP for vectors, a small CNN for images). The
partitions of Section 4.1.1 are :func:`partition_mask`'s ``"halves"``, ``"alternating"``,
``"channels"`` and ``"checkerboard"``; the squeeze is
:class:`~spdl_ref.invertible.PixelShuffleDown`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.types import Device

from .. import _validate
from ._base import InvertibleModule, check_batch, factory, feature_shape

__all__ = ["AdditiveCoupling", "AffineCoupling", "partition_mask", "subnetwork"]

MASKS = ("halves", "alternating", "channels", "checkerboard")


def partition_mask(
    shape: int | Sequence[int],
    kind: str = "halves",
    flip: bool = False,
    *,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""The binary mask :math:`m` of a partition :math:`I = I_1 \cup I_2` (Section 4.1.1).

    Parameters
    ----------
    shape : int or tuple
        Feature shape: ``M`` for vectors, ``(C, H, W)`` for images.
    kind : str
        ``"halves"`` (first half of the entries; of the channels for images), ``"alternating"``
        (even-indexed entries, vectors only), ``"channels"`` (first half of the channels, images
        only), ``"checkerboard"`` (pixels with :math:`i + j` even, images only).
    flip : bool
        Swap the roles of the two parts (:math:`m \mapsto 1 - m`).

    Returns
    -------
    torch.Tensor
        A 0/1 tensor of the feature shape; ones mark :math:`x_1`, the entries left unchanged.
    """
    shape = feature_shape(shape, "shape")
    _validate.choice(kind, MASKS, "kind")
    _validate.boolean(flip, "flip")
    factory(device, dtype)
    image = len(shape) == 3
    if kind == "halves":
        kind = "channels" if image else "halves"
    if kind in ("channels", "checkerboard") and not image:
        raise ValueError(f"kind={kind!r} needs an image shape (C, H, W), got {shape}")
    if kind == "alternating" and image:
        raise ValueError(
            "kind='alternating' is for vector shapes; use 'checkerboard' or 'channels'"
        )
    if kind in ("halves", "channels") and shape[0] % 2:
        raise ValueError(
            f"kind={kind!r} splits {'channels' if image else 'entries'} into halves, "
            f"so shape[0] must be even, got {shape[0]}"
        )
    if kind == "halves":
        m = torch.arange(shape[0], device="cpu") < shape[0] // 2
    elif kind == "alternating":
        if shape[0] < 2:
            raise ValueError(f"kind='alternating' needs at least 2 entries, got {shape[0]}")
        m = torch.arange(shape[0], device="cpu") % 2 == 0
    elif kind == "channels":
        m = (torch.arange(shape[0], device="cpu") < shape[0] // 2)[:, None, None].expand(shape)
    else:
        if shape[1] * shape[2] < 2:
            raise ValueError(f"kind='checkerboard' needs at least 2 pixels, got {shape}")
        i = torch.arange(shape[1], device="cpu")[:, None]
        j = torch.arange(shape[2], device="cpu")[None, :]
        m = ((i + j) % 2 == 0)[None].expand(shape)
    m = m.clone()
    if flip:
        m = ~m
    return m.to(device=device, dtype=dtype or torch.get_default_dtype())


#: The activations a coupling sub-network may use (:func:`subnetwork`'s ``activation``).
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def subnetwork(
    shape: int | Sequence[int],
    outputs_per_entry: int,
    hidden: int = 64,
    *,
    zero_init: bool = True,
    activation: str = "tanh",
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> nn.Sequential:
    r"""The sub-network :math:`f` of eq. (42): any network, here a small MLP or CNN.

    For vectors (``shape = M``) an MLP :math:`M \to` ``hidden`` :math:`\to` ``hidden``
    :math:`\to P M`; for images (``shape = (C, H, W)``) three convolutions (3x3, 1x1, 3x3)
    with ``P C`` output channels, ``P = outputs_per_entry``. With ``zero_init`` the last layer
    starts at zero, so a coupling layer starts as the identity. ``activation`` is ``"tanh"``
    (smooth, the default) or ``"relu"`` (RealNVP's choice, and zuko's; on a CPU it is several
    times cheaper to evaluate than tanh, which matters when the sub-network is wide).
    """
    shape = feature_shape(shape, "shape")
    p = _validate.positive_int(outputs_per_entry, "outputs_per_entry")
    hidden = _validate.positive_int(hidden, "hidden")
    _validate.boolean(zero_init, "zero_init")
    _validate.choice(activation, tuple(ACTIVATIONS), "activation")
    act = ACTIVATIONS[activation]
    kw = factory(device, dtype)
    last: nn.Linear | nn.Conv2d
    if len(shape) == 1:
        last = nn.Linear(hidden, p * shape[0], **kw)
        net = nn.Sequential(
            nn.Linear(shape[0], hidden, **kw),
            act(),
            nn.Linear(hidden, hidden, **kw),
            act(),
            last,
        )
    else:
        c = shape[0]
        last = nn.Conv2d(hidden, p * c, 3, padding=1, **kw)
        net = nn.Sequential(
            nn.Conv2d(c, hidden, 3, padding=1, **kw),
            act(),
            nn.Conv2d(hidden, hidden, 1, **kw),
            act(),
            last,
        )
    if zero_init:
        nn.init.zeros_(last.weight)
        assert last.bias is not None  # built with the default bias=True
        nn.init.zeros_(last.bias)
    return net


class _Coupling(InvertibleModule):
    """Shared machinery: mask, sub-network, shape checks (eqs. (42)-(43))."""

    mask: torch.Tensor

    n_params = 1

    def __init__(
        self,
        dim: int | Sequence[int],
        mask: str | torch.Tensor = "halves",
        flip: bool = False,
        hidden: int = 64,
        zero_init: bool = True,
        device: Device = None,
        dtype: torch.dtype | None = None,
        *,
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        self.shape = feature_shape(dim)
        _validate.boolean(flip, "flip")
        factory(device, dtype)
        if isinstance(mask, torch.Tensor):
            if tuple(mask.shape) != self.shape or not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError(f"mask must be a 0/1 tensor of shape {self.shape}")
            m = mask.to(device=device, dtype=dtype or torch.get_default_dtype())
            if flip:
                m = 1 - m
        elif isinstance(mask, str):
            _validate.choice(mask, MASKS, "mask")
            image = len(self.shape) == 3
            if mask in ("halves", "channels") and self.shape[0] % 2:
                raise ValueError(
                    f"dim must have an even number of {'channels' if image else 'entries'} "
                    f"for mask={mask!r} (two halves), got {dim}"
                )
            m = partition_mask(self.shape, mask, flip, device=device, dtype=dtype)
        else:
            raise TypeError(
                f"mask must be one of {MASKS} or a 0/1 torch.Tensor, got {type(mask).__name__}"
            )
        if not (0 < float(m.sum()) < m.numel()):
            raise ValueError("mask must keep some entries and transform the others")
        self.register_buffer("mask", m)
        self.net = subnetwork(
            self.shape,
            self.n_params,
            hidden,
            zero_init=zero_init,
            activation=activation,
            device=device,
            dtype=dtype,
        )

    def _params(self, x1):
        """Evaluate :math:`f(x_1)`, shaped ``(N, *shape, P)``."""
        out = _validate.finite_result(
            self.net(x1), f"the output of the sub-network f of {type(self).__name__}"
        )
        out = out.reshape(x1.shape[0], self.n_params, *self.shape)
        return out.movedim(1, -1)

    def _check(self, x, name):
        return check_batch(x, name, self.shape, like=self.mask, owner=type(self).__name__)

    def _couple(self, x, p):  # pragma: no cover - abstract
        r""":math:`(y, \log|\det|)` from :math:`x` and :math:`p = f(x_1)`, eq. (42)."""
        raise NotImplementedError

    def _uncouple(self, y, p):  # pragma: no cover - abstract
        """:math:`x` from :math:`y` and :math:`p = f(y_1)`, eq. (43)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The coupling (42): the masked part passes, the rest is updated from it."""
        return self.forward_and_log_det(x)[0]

    def forward_and_log_det(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The coupling (42) and its log-determinant, from one evaluation of the subnetwork."""
        self._check(x, "x")
        return self._couple(x, self._params(self.mask * x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse (43): the masked part is unchanged, so the update can be undone."""
        self._check(y, "y")
        return self._uncouple(y, self._params(self.mask * y))

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """One log-determinant per sample: the block-triangular Jacobian's diagonal."""
        return self.forward_and_log_det(x)[1]

    def reconstruct(
        self, y: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """For the memory-efficient backward (Section 4.2.1): rebuild :math:`x` from :math:`y`
        and re-evaluate the layer with a graph, evaluating :math:`f` once (since
        :math:`x_1 = y_1`). Returns ``(x, leaves, y, logdet)``; the gradient with respect to
        :math:`x` is the sum of the gradients with respect to ``leaves``."""
        x1 = y.detach().requires_grad_(True)
        p = self._params(self.mask * x1)
        x = self._uncouple(y.detach(), p.detach()).requires_grad_(True)
        out, logdet = self._couple(x, p)
        return x, [x, x1], out, logdet

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class AdditiveCoupling(_Coupling):
    r"""Additive coupling, eqs. (42)-(43) with :math:`\gamma(a, b) = a + b` (NICE).

    :math:`y = m \odot x + (1 - m) \odot (x + f(m \odot x))`. The Jacobian is unit block
    triangular, so :math:`\log|\det| = 0`: the layer is a volume-preserving shear (Section 2.2.3).

    Parameters
    ----------
    dim : int or tuple
        ``M`` for inputs ``(N, M)``, ``(C, H, W)`` for images ``(N, C, H, W)``.
    mask : str or torch.Tensor
        A :func:`partition_mask` kind or an explicit 0/1 mask; ones pass unchanged.
    flip : bool
        Swap the two parts (alternate it from layer to layer).
    hidden : int
        Width of the sub-network :math:`f`.
    zero_init : bool
        Start as the identity.
    activation : str
        The sub-network's activation, ``"tanh"`` or ``"relu"`` (:func:`subnetwork`).
    """

    n_params = 1

    def _couple(self, x, p):
        return x + (1 - self.mask) * p[..., 0], x.new_zeros(x.shape[0])

    def _uncouple(self, y, p):
        return y - (1 - self.mask) * p[..., 0]


class AffineCoupling(_Coupling):
    r"""Affine coupling, eqs. (42)-(43) with :math:`\gamma(a, (s, t)) = a \odot e^{s} + t`
    (RealNVP).

    The log-scale is kept bounded, :math:`s = \beta \tanh(\tilde s / \beta)`, so that neither
    the layer nor its inverse can blow up (stable scale parametrisation, Section 4.1.1). The
    Jacobian is triangular after reordering with diagonal :math:`e^{s}` on :math:`x_2`, so
    :math:`\log|\det \partial_x f| = \sum_{i \in I_2} s_i` (Section 4.2.3).

    Parameters
    ----------
    dim, mask, flip, hidden, zero_init, activation :
        As in :class:`AdditiveCoupling`.
    scale_bound : float
        :math:`\beta > 0`, the bound on :math:`|s|`.
    """

    n_params = 2

    def __init__(
        self,
        dim: int | Sequence[int],
        mask: str | torch.Tensor = "halves",
        flip: bool = False,
        hidden: int = 64,
        zero_init: bool = True,
        scale_bound: float = 2.0,
        device: Device = None,
        dtype: torch.dtype | None = None,
        *,
        activation: str = "tanh",
    ) -> None:
        super().__init__(dim, mask, flip, hidden, zero_init, device, dtype, activation=activation)
        self.scale_bound = _validate.positive_real(scale_bound, "scale_bound")

    def _st(self, p):
        s = self.scale_bound * torch.tanh(p[..., 0] / self.scale_bound)
        return (1 - self.mask) * s, (1 - self.mask) * p[..., 1]

    def _couple(self, x, p):
        s, t = self._st(p)
        return x * torch.exp(s) + t, s.flatten(1).sum(1)

    def _uncouple(self, y, p):
        s, t = self._st(p)
        return (y - t) * torch.exp(-s)
