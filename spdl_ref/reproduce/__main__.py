"""``python -m spdl_ref.reproduce``: see :mod:`spdl_ref.reproduce`."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
