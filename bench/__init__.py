"""Benchmarks: speed and memory measured on a named machine, results as JSON under bench/results/."""
