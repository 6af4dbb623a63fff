"""ODE networks and their integrators (Sections 1-2 of the review).

* :mod:`spdl_ref.ode.resnet` -- the ResNet (5)-(8) as forward Euler for an ODE, and the output
  layer :math:`\\eta` of Section 1.2;
* :mod:`spdl_ref.ode.runge_kutta` -- Runge–Kutta methods from Butcher tableaux, explicit and
  implicit, and the algebraic-stability test (Section 2.2).
"""

from .resnet import ClassifierHead, ResNet
from .runge_kutta import TABLEAUX, butcher_tableau, is_algebraically_stable, odeint, rk_step

__all__ = [
    "TABLEAUX",
    "ClassifierHead",
    "ResNet",
    "butcher_tableau",
    "is_algebraically_stable",
    "odeint",
    "rk_step",
]
