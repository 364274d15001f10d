"""Plots of DAGCL runs."""
