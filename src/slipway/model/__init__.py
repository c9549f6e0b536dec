"""The example model: the one place a team replaces when it adopts the template.

- ``loading.py``: how raw batches are read (CSV or Parquet, local or ``s3://``), each a DataFrame by name.
- ``features.py``: derived features, computed identically by training and serving.
- ``estimator.py``: the estimator factory, driven by ``params.yaml``'s ``train`` section.
- ``example_data.py``: the seeded churn generator (only needed for the example data).

Everything else under ``slipway`` is platform code that works on whatever these return.
"""
