r"""Finite rotation and rotation-reflection groups acting on the square pixel grid (Section 5.1).

The groups are the cyclic groups :math:`C_N` (rotations by multiples of :math:`2\pi/N`) and the
dihedral groups :math:`D_N` (the same rotations and :math:`N` reflections) for :math:`N` in
``{1, 2, 4}``: exactly the rotation(-reflection) groups that map the square grid
:math:`\mathbb{Z}^2` onto itself, so that their action on images needs no interpolation. With the
translations they form the groups :math:`G = \mathbb{Z}^2 \rtimes H` of Section 5.1.1, whose
homogeneous space :math:`G/H` is the pixel grid.

An element :math:`g = r^k f^s` (:math:`0 \le k < N`, :math:`s \in \{0, 1\}`) acts on a point
:math:`p = (x, y)` of the plane as :math:`g p = R^k F^s p`, with :math:`R` the rotation by
:math:`2\pi/N` (counter-clockwise) and :math:`F` the reflection :math:`(x, y) \mapsto (x, -y)`.
Pixel ``(i, j)`` (row, column) of an ``n x n`` image sits at :math:`x = j - c`, :math:`y = c - i`
with :math:`c = (n - 1)/2`.

Representations :math:`\rho : H \to GL(V)` are given by the matrices of all group elements:
``trivial``, ``regular`` (permutation of the basis :math:`e_h \mapsto e_{gh}`) and the real
irreducible ones, named as in escnn: ``("irrep", m)`` for :math:`C_N` (rotation order
:math:`m`) and ``("irrep", j, m)`` for :math:`D_N` (:math:`j = 1` flips under reflections).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .. import _validate

__all__ = ["FiniteGroup", "Representation", "direct_sum"]

#: A group element :math:`r^k f^s` as the pair ``(k, s)``.
Element = tuple[int, int]


@dataclass(frozen=True)
class FiniteGroup:
    r"""The point group :math:`H = C_N` or :math:`D_N`, :math:`N \in \{1, 2, 4\}` (Section 5.1.1).

    Parameters
    ----------
    name : str
        ``"C1"``, ``"C2"``, ``"C4"``, ``"D1"``, ``"D2"`` or ``"D4"``.
    """

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(
                f"name must be a string like 'C4' or 'D4', got {type(self.name).__name__}"
            )
        if len(self.name) != 2 or self.name[0] not in "CD" or self.name[1] not in "124":
            raise ValueError(
                "name must be one of C1, C2, C4, D1, D2, D4 (the rotation(-reflection) groups "
                "that "
                f"map the square grid to itself), got {self.name!r}"
            )

    @property
    def N(self) -> int:
        """Number of rotations."""
        return int(self.name[1])

    @property
    def reflections(self) -> bool:
        """Whether the group contains reflections (dihedral)."""
        return self.name[0] == "D"

    @property
    def elements(self) -> list[Element]:
        """All elements as pairs ``(k, s)`` meaning :math:`r^k f^s`; the identity comes first."""
        return [(k, s) for s in range(2 if self.reflections else 1) for k in range(self.N)]

    @property
    def generators(self) -> list[Element]:
        """A generating set (the rotation :math:`r` and, for :math:`D_N`, the reflection
        :math:`f`)."""
        gens = [(1 % self.N, 0)] if self.N > 1 else []
        return gens + ([(0, 1)] if self.reflections else [])

    @property
    def order(self) -> int:
        """Number of elements :math:`|H|`."""
        return len(self.elements)

    def check_element(self, g: object, name: str = "g") -> Element:
        """``g`` if it is an element ``(k, s)`` of this group, else a ValueError naming ``name``."""
        if not isinstance(g, tuple) or g not in self.elements:
            raise ValueError(
                f"{name} must be an element (k, s) of {self.name}, 0 <= k < {self.N}, "
                f"s in {{0{', 1' if self.reflections else ''}}}, got {g!r}"
            )
        return g

    def compose(self, g: Element, h: Element) -> Element:
        """The product :math:`gh` (apply :math:`h` first): :math:`r^{k_1} f^{s_1} r^{k_2}
        f^{s_2}`."""
        (k1, s1), (k2, s2) = self.check_element(g), self.check_element(h, "h")
        return ((k1 + (-1) ** s1 * k2) % self.N, (s1 + s2) % 2)

    def inverse(self, g: Element) -> Element:
        """The inverse :math:`g^{-1}`."""
        k, s = self.check_element(g)
        return (k, s) if s else ((-k) % self.N, 0)

    def matrix(self, g: Element, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The 2 x 2 matrix :math:`R^k F^s` by which :math:`g` acts on the plane."""
        k, s = self.check_element(g)
        _validate.float_dtype(dtype)
        t = 2 * math.pi * k / self.N
        c, sn = round(math.cos(t)), round(math.sin(t))  # exact for N in {1, 2, 4}
        rot = torch.tensor([[c, -sn], [sn, c]], dtype=dtype)
        return rot @ torch.diag(torch.tensor([1.0, -1.0 if s else 1.0], dtype=dtype))

    def representation(self, kind: str | tuple[Any, ...]) -> Representation:
        """A representation of this group: ``"trivial"``, ``"regular"`` or ``("irrep", ...)``.

        See the module docstring for the names of the irreducible representations.
        """
        if kind == "trivial":
            mats = torch.ones(self.order, 1, 1, dtype=torch.float64)
        elif kind == "regular":
            els = self.elements
            mats = torch.zeros(self.order, self.order, self.order, dtype=torch.float64)
            for a, g in enumerate(els):
                for b, h in enumerate(els):
                    mats[a, els.index(self.compose(g, h)), b] = 1.0
        elif isinstance(kind, tuple) and len(kind) >= 2 and kind[0] == "irrep":
            mats = self._irrep(kind)
        else:
            raise ValueError(f"kind must be 'trivial', 'regular' or ('irrep', ...), got {kind!r}")
        return Representation(self, mats, kind)

    def irreps(self) -> list:
        """The names of all real irreducible representations of the group."""
        ms = range(self.N // 2 + 1)
        if not self.reflections:
            return [("irrep", m) for m in ms]
        out = []
        for m in ms:
            one_dim = m == 0 or 2 * m == self.N
            out += [("irrep", 0, m), ("irrep", 1, m)] if one_dim else [("irrep", 1, m)]
        return out

    def _irrep(self, kind):
        if kind not in self.irreps():
            raise ValueError(f"kind must be one of {self.irreps()} for {self.name}, got {kind!r}")
        j, m = (0, kind[1]) if len(kind) == 2 else kind[1:]
        mats = []
        for k, s in self.elements:
            if m == 0 or 2 * m == self.N:
                sign = (-1) ** (k * (2 * m // self.N) if m else 0) * (-1) ** (j * s)
                mats.append(torch.tensor([[float(sign)]], dtype=torch.float64))
            else:
                t = 2 * math.pi * m * k / self.N
                c, sn = round(math.cos(t)), round(math.sin(t))
                rot = torch.tensor([[c, -sn], [sn, c]], dtype=torch.float64)
                mats.append(
                    rot @ torch.diag(torch.tensor([1.0, -1.0 if s else 1.0], dtype=torch.float64))
                )
        return torch.stack(mats)


class Representation:
    r"""A representation :math:`\rho` of a :class:`FiniteGroup` by orthogonal matrices (Section
    5.1.2).

    ``matrices[a]`` is :math:`\rho(g_a)` for the ``a``-th element of ``group.elements``.
    """

    def __init__(self, group: FiniteGroup, matrices: torch.Tensor, name: object = None) -> None:
        _validate.instance(group, FiniteGroup, "group")
        _validate.tensor(matrices, "matrices")
        if (
            matrices.dim() != 3
            or matrices.shape[0] != group.order
            or matrices.shape[1] != matrices.shape[2]
        ):
            raise ValueError(
                f"matrices must have shape ({group.order}, d, d), got {tuple(matrices.shape)}"
            )
        self.group, self.matrices, self.name = group, matrices.to(torch.float64), name
        eye = torch.eye(self.dim, dtype=torch.float64)
        if float((self.matrices.mT @ self.matrices - eye).abs().max()) > 1e-6:
            raise ValueError("matrices must be orthogonal (rho(g)^T rho(g) = I)")
        if not self.is_homomorphism(1e-6):
            raise ValueError(
                f"matrices must form a representation of {group.name}: "
                "rho(g h) = rho(g) rho(h) for all g, h"
            )

    @property
    def dim(self) -> int:
        """The dimension :math:`d` of the representation space :math:`V`."""
        return self.matrices.shape[1]

    def __call__(self, g: Element) -> torch.Tensor:
        """The matrix :math:`\\rho(g)`."""
        return self.matrices[self.group.elements.index(self.group.check_element(g))]

    def is_homomorphism(self, tol: float = 1e-12) -> bool:
        r"""Whether :math:`\rho(gh) = \rho(g)\rho(h)` for all pairs (a check of the data)."""
        tol = _validate.nonnegative_real(tol, "tol")
        G = self.group
        return all(
            float((self(G.compose(g, h)) - self(g) @ self(h)).abs().max()) <= tol
            for g in G.elements
            for h in G.elements
        )

    def __repr__(self) -> str:
        return f"Representation({self.group.name}, {self.name!r}, dim={self.dim})"


def direct_sum(*reps: Representation) -> Representation:
    r"""The block-diagonal representation :math:`\rho_1 \oplus \rho_2 \oplus \dots` (Section
    5.1.2)."""
    if not reps:
        raise ValueError("reps must hold at least one representation")
    for i, r in enumerate(reps):
        _validate.instance(r, Representation, f"reps[{i}]")
    group = reps[0].group
    if any(r.group != group for r in reps):
        raise ValueError("reps must all be representations of the same group")
    mats = torch.stack(
        [torch.block_diag(*(r.matrices[a] for r in reps)) for a in range(group.order)]
    )
    return Representation(group, mats, tuple(r.name for r in reps))
