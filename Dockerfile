# suggestbox (职工百宝箱) — container image. Multi-stage: the build stage builds the wheel (the
# package with its templates, static files and migrations inside) and installs it with its
# dependencies into a virtualenv; the final image gets that virtualenv only, runs as a non-root
# user, and has no compiler, no pip and no build tools.
#   docker compose up -d          (see compose.yaml and deploy/README.md)
# BASE: any Debian-based image with Python 3.11+ as `python3` on PATH. The default is the
# published image; CI builds from a local Debian 12 base made with mmdebstrap (.ci/container).

ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python3 -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY suggestbox/ ./suggestbox/
COPY templates/ ./templates/
COPY static/ ./static/
# A regular (not editable) install: nothing in the image refers to /src afterwards. Then drop
# the installers from the virtualenv.
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall -y pip setuptools \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${BASE}
# postgresql-client: pg_dump/pg_restore for `suggestbox backup`/`restore` (15 = the compose db).
# pip uninstall: the published image ships pip, setuptools and wheel; a Debian base has none.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && if python3 -m pip --version >/dev/null 2>&1; then \
      python3 -m pip uninstall -y pip setuptools wheel; fi \
 && groupadd --system --gid 10001 suggestbox \
 && useradd --system --uid 10001 --gid suggestbox --home-dir /var/lib/suggestbox \
      --shell /usr/sbin/nologin suggestbox \
 && install -d -o suggestbox -g suggestbox -m 0700 /var/lib/suggestbox
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SUGGESTBOX_DATA_DIR=/var/lib/suggestbox
USER suggestbox
WORKDIR /var/lib/suggestbox
VOLUME ["/var/lib/suggestbox"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Migrates, then serves; workers from SUGGESTBOX_WORKERS. Access log off, JSON logs on stderr.
CMD ["suggestbox", "serve", "--host", "0.0.0.0", "--port", "8000"]
