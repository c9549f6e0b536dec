#!/usr/bin/env bash
# Serving benchmark: our server, MLServer (mlserver-sklearn, same model, same worker count) and a
# constant-response Flask floor, driven by wrk, interleaved, in one run. Needs `make pipeline` (the
# bundle in models/, and the test split whose rows the requests send) and wrk (`make bench-serve`
# installs it, and nginx for --proxy, where missing).
# Figures: bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench/serve.sh: wrk not found (Debian: apt-get install wrk; \`make bench-serve\` installs it)" >&2; exit 1; }
[ -f models/model.json ] || { echo "bench/serve.sh: no bundle in models/; run make pipeline" >&2; exit 1; }
PEER_VENV=${PEER_VENV:-.venv-mlserver}
if [ ! -x "$PEER_VENV/bin/mlserver" ]; then
  python3 -m venv "$PEER_VENV"
  .venv/bin/uv pip install --quiet --python "$PEER_VENV/bin/python" -r bench/mlserver-requirements.txt
fi
exec .venv/bin/python bench/serving.py --mlserver "$PEER_VENV/bin/mlserver" "$@"
