"""Monitoring: reference distributions, drift statistics, canary analysis."""
