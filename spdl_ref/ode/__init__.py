"""ODE networks and their integrators (Sections 1-2 of the review).

So far: the ResNet (5)-(8) as forward Euler for an ODE, and the output layer η of Section 1.2.
"""

from .resnet import ClassifierHead, ResNet

__all__ = ["ClassifierHead", "ResNet"]
