# The model server image: the serving extras only (no DVC, no deepchecks) plus one baked-in model.
# Tag = the model version (models/model.json), then a hash of this build's inputs (slipway
# image-tag), so a tag names exactly one image:
#   docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) \
#     --build-arg MODEL_VERSION=$(slipway image-tag --version-only) -t $(slipway image-tag) .
# Runs as a non-root user with a read-only root filesystem; /tmp must be a writable volume (the
# Prometheus multiprocess directory lives there).

FROM python:3.11-slim AS build
WORKDIR /build
COPY requirements/bootstrap.txt requirements/serving.txt requirements/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check -r requirements/bootstrap.txt \
    && /opt/venv/bin/uv pip install --no-cache --compile-bytecode --python /opt/venv/bin/python -r requirements/serving.txt
COPY pyproject.toml README.md ./
COPY src ./src
# Bytecode compiled here: the image sets PYTHONDONTWRITEBYTECODE and its root filesystem is
# read-only, so without it every worker gunicorn starts would compile each module from source
# (measured with `make serve`'s settings: ready after 7.4 s instead of 2.8 s).
RUN /opt/venv/bin/uv pip install --no-cache --compile-bytecode --python /opt/venv/bin/python --no-deps . \
    && /opt/venv/bin/uv pip uninstall --python /opt/venv/bin/python uv pip

FROM python:3.11-slim
ARG GIT_COMMIT=unknown
ARG MODEL_VERSION=unknown
LABEL org.opencontainers.image.title="slipway-model-server" \
      org.opencontainers.image.description="Slipway model server with one baked-in model" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 slipway \
    && useradd --system --uid 10001 --gid slipway --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin slipway
COPY --from=build /opt/venv /opt/venv
COPY models/ reports/metrics.json reports/gate.json /app/model/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SLIPWAY_MODEL_DIR=/app/model \
    SLIPWAY_REPORTS_DIR=/app/model \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics \
    PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/readyz', timeout=2)"]
CMD ["gunicorn", "-c", "python:slipway.serving.gunicorn_conf", "slipway.serving.wsgi:app"]
