"""``python -m sofgan_lab.cli`` (and ``torchrun -m sofgan_lab.cli``): the ``sofgan-lab`` command."""
import sys

from . import main

if __name__ == "__main__":  # importing the module (e.g. pkgutil.walk_packages) runs nothing
    sys.exit(main())
