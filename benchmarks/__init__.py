"""Side-by-side benchmarks of ssshelf: ``make bench`` / ``python -m benchmarks.run``.

Not part of ``make test``.  See ``docs/benchmarks.md`` for what is measured
and how, and ``BENCHMARKS.md`` for the latest figures.
"""
