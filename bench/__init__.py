"""Benchmarks for linecap: receiver, worker drain, budget use and footprint.

`.venv/bin/python -m bench` runs every part on loopback against baselines measured in the same
run and writes docs/BENCHMARKS.md; `--quick` is a smoke run of a few seconds per part.
"""
