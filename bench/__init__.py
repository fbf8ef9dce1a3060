"""Benchmarks of vipanel against plain OpenSSH and Ansible on the namespace lab (tests/lab).

Run with `make bench` (or `python -m bench --help`); results go to bench/results/*.json and
docs/BENCHMARKS.md is written from them. These are measurements, not tests: nothing here fails
because something was slow, it only reports.
"""
