"""Loaded by pytest before anything else: pin torch's CPU code paths (tools/cpu_numerics.py).

This runs before any test module or notebook kernel imports torch, so the unit tests and the
chapters under nbval compute with the same kernels as the stored outputs, whatever the CPU.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "tools"))

import cpu_numerics  # found through the path set just above

cpu_numerics.apply()
