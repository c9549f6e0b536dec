"""The model server: a Flask app factory run by gunicorn. Imports nothing of the pipeline's
heavy tooling (no deepchecks, no DVC), so the serving image installs only the serving extras."""
