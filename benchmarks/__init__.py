"""Performance benchmarks for sofgan-lab: ``python -m benchmarks --help`` (or ``./dev bench``).

Cases live in :mod:`benchmarks.cases` (one module per topic, registered with
``@register(name, description=...)``); results go to ``benchmarks/results/`` as one JSON file per
case plus ``SUMMARY.md``.
"""
