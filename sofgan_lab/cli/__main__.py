"""``python -m sofgan_lab.cli`` (and ``torchrun -m sofgan_lab.cli``): the ``sofgan-lab`` command."""
import sys

from . import main

sys.exit(main())
