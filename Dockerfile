# suggestbox (职工百宝箱) — container image. Multi-stage: the build stage installs the package and
# its dependencies into a virtualenv; the final image gets that virtualenv and the app's files,
# runs as a non-root user, and has no compiler, no pip and no build tools.
#   docker compose up -d          (see compose.yaml and deploy/README.md)

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY suggestbox/ ./suggestbox/
# Editable install: the package stays in /app next to templates/ and static/, where
# settings.ROOT expects them. Then drop the installers from the virtualenv.
RUN /opt/venv/bin/pip install -e . \
 && /opt/venv/bin/pip uninstall -y pip setuptools \
 && find /opt/venv /app -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm
# postgresql-client: pg_dump/pg_restore for `suggestbox backup`/`restore` (15 = the compose db).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && python -m pip uninstall -y pip setuptools wheel \
 && groupadd --system --gid 10001 suggestbox \
 && useradd --system --uid 10001 --gid suggestbox --home-dir /var/lib/suggestbox \
      --shell /usr/sbin/nologin suggestbox \
 && install -d -o suggestbox -g suggestbox -m 0700 /var/lib/suggestbox
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY templates/ /app/templates/
COPY static/ /app/static/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SUGGESTBOX_DATA_DIR=/var/lib/suggestbox
USER suggestbox
WORKDIR /app
VOLUME ["/var/lib/suggestbox"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Migrates, then serves; workers from SUGGESTBOX_WORKERS. Access log off, JSON logs on stderr.
CMD ["suggestbox", "serve", "--host", "0.0.0.0", "--port", "8000"]
