"""Frontline's benchmarks: ``python -m bench.run`` (``make bench``); see docs/benchmarks.md."""
