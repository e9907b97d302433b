"""Benchmark tooling (not shipped): `make bench` runs ``python -m bench.run``.

The orchestrator (run.py) starts the servers under test and drives them from a separate
load-generator process (client.py), so server and client never share an interpreter.
"""
