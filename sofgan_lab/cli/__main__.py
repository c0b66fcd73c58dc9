"""``python -m sofgan_lab.cli`` (and ``torchrun -m sofgan_lab.cli``): the ``sofgan-lab`` command."""
import sys

from . import main

if __name__ == "__main__":  # not when a tool imports every submodule
    sys.exit(main())
