"""Package layout that pyproject.toml cannot express declaratively.

The top-level folder ``widgets/`` is installed as the subpackage ``sofgan_lab.widgets`` (in
editable and wheel installs alike), and every subpackage of ``sofgan_lab/`` is found
automatically. Everything else lives in pyproject.toml.
"""
from setuptools import find_packages, setup

core = find_packages(include=["sofgan_lab", "sofgan_lab.*"])
widgets = ["sofgan_lab.widgets"] + [
    "sofgan_lab.widgets." + p for p in find_packages(where="widgets")
]
setup(
    packages=core + widgets,
    package_dir={"sofgan_lab": "sofgan_lab", "sofgan_lab.widgets": "widgets"},
)
