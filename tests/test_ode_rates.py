"""Observed and fitted orders (spdl_ref.ode: observed_orders, fitted_order)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref.ode import fitted_order, observed_orders


@given(
    st.floats(0.1, 6.0),
    st.floats(1e-3, 1e3),
    st.lists(st.integers(1, 4096), min_size=2, max_size=6, unique=True),
)
def test_power_laws_give_their_exponent(q, C, sizes):
    sizes = sorted(sizes)
    errors = [C * n ** (-q) for n in sizes]
    assert all(r == pytest.approx(q, rel=1e-9) for r in observed_orders(sizes, errors))
    assert fitted_order(sizes, errors) == pytest.approx(q, rel=1e-9)


def test_fitted_order_averages_noise_and_pairs_do_not():
    sizes = [4, 8, 16, 32]
    errors = [e * f for e, f in zip([1.0, 0.5, 0.25, 0.125], [1.0, 1.1, 1.0, 1.1], strict=True)]
    pairs = observed_orders(sizes, errors)
    assert pairs[0] < 1 < pairs[1]  # log2(1/0.55) and log2(0.55/0.25)
    assert fitted_order(sizes, errors) == pytest.approx(1 - math.log2(1.1) * 0.2, abs=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same length >= 2"):
        observed_orders([1, 2], [1.0])
    with pytest.raises(ValueError, match="sizes must increase"):
        fitted_order([2, 1], [1.0, 0.5])
    with pytest.raises(ValueError, match="errors must be > 0"):
        observed_orders([1, 2], [1.0, 0.0])
    with pytest.raises(TypeError, match="lists"):
        fitted_order(3, [1.0])
