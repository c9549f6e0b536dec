"""Slipway: a GitOps MLOps repository template."""
