"""Benchmarks: fhir-bridge against the alternatives a Python user would pick and against the
server's own ceiling, in one run on one machine. Run with ``make bench`` (``python -m bench``).

Benchmarks are not tests: nothing here asserts a time. ``python -m bench --smoke`` runs every
part on a tiny panel once, so CI can prove the code still works.
"""
