"""Optional dependencies: one clear :class:`ImportError` that names the extra to install.

``spdl_ref`` itself needs only torch, NumPy, SciPy and tqdm. Plotting needs matplotlib (the
``book`` extra), the escnn layers of Section 5 need escnn (``equivariant``), the geoopt
comparison of Section 6.2.1 needs geoopt (``riemannian``), the Dask backend of
``python -m spdl_ref.reproduce`` needs distributed (``cluster``). Modules that import one of
them do so inside :func:`optional_dependency`::

    with optional_dependency("book", "spdl_ref.plotting"):
        import matplotlib
"""

from __future__ import annotations

import contextlib

#: The extras of pyproject.toml that hold optional dependencies, by the module they provide.
EXTRAS = {
    "matplotlib": "book",
    "escnn": "equivariant",
    "geoopt": "riemannian",
    "distributed": "cluster",
}


@contextlib.contextmanager
def optional_dependency(extra: str, needed_by: str):
    """Turn an :class:`ImportError` raised inside the block into one that names ``extra``.

    Parameters
    ----------
    extra : str
        The extra of ``spdl-ref`` that installs the missing package (``"book"``,
        ``"equivariant"``, ``"riemannian"`` or ``"cluster"``).
    needed_by : str
        What needs it, as the reader would call it (``"spdl_ref.plotting"``,
        ``"make_denoiser('equivariant')"``).
    """
    if extra not in set(EXTRAS.values()):
        raise ValueError(f"extra must be one of {sorted(set(EXTRAS.values()))}, got {extra!r}")
    try:
        yield
    except ImportError as err:
        missing = getattr(err, "name", None) or "an optional dependency"
        # name= is the missing package, as for the ImportError Python itself raises
        raise ImportError(
            f"{needed_by} needs {missing}, which could not be imported ({err}). "
            f'Install the "{extra}" extra: pip install "spdl-ref[{extra}]"',
            name=getattr(err, "name", None),
        ) from err
