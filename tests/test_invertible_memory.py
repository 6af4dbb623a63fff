"""Peak activation memory of a training step, ordinary against memory-efficient backpropagation
(Section 4.2.1)."""

import os
import subprocess
import sys

import pytest
import torch

from spdl_ref import invertible as inv


def test_coupling_step_memory_grows_with_depth_only_for_autograd():
    small = dict(width=8, hidden=16, batch=32)
    auto = [inv.coupling_step_memory(d, False, **small) for d in (2, 6)]
    eff = [inv.coupling_step_memory(d, True, **small) for d in (2, 6)]
    assert auto[1] > 2 * auto[0] > 0
    assert eff[1] <= 1.25 * eff[0]
    assert eff[1] < auto[1]


def test_coupling_step_memory_is_deterministic_and_keeps_the_global_generator():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a = inv.coupling_step_memory(2, False, width=4, hidden=8, batch=16, dtype=torch.float64)
    assert torch.equal(torch.get_rng_state(), before)
    assert a == inv.coupling_step_memory(2, False, width=4, hidden=8, batch=16, dtype=torch.float64)
    assert a > inv.coupling_step_memory(2, False, width=4, hidden=8, batch=16, dtype=torch.float32)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(depth=0, memory_efficient=False), ValueError),
        (dict(depth=2, memory_efficient=1), TypeError),
        (dict(depth=2, memory_efficient=False, width=1), ValueError),
        (dict(depth=2, memory_efficient=False, batch=0), ValueError),
        (dict(depth=2, memory_efficient=False, seed=-1), ValueError),
        (dict(depth=2.0, memory_efficient=False), TypeError),
    ],
)
def test_coupling_step_memory_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        inv.coupling_step_memory(**kwargs)


def test_peak_memory_prints_nothing():
    """The profiler's back end (libkineto) logs each profile on stderr unless told not to."""
    code = (
        "import torch\n"
        "from spdl_ref.invertible import peak_memory\n"
        "for _ in range(2):\n"
        "    peak_memory(lambda: torch.randn(64, 64) @ torch.randn(64, 64))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KINETO_LOG_LEVEL"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == "", out.stderr
