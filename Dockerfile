# dli-exporter: build a wheel (and its dependencies' wheels), install them into a venv on a slim
# image, run as a fixed non-root user. `docker build -t dli-exporter .`

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# The version is the package's (exporter/__init__.py); tests/test_image.py holds them equal.
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="dli-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Flink jobs on Huawei Cloud Data Lake Insight (DLI)" \
      org.opencontainers.image.source="https://github.com/dli-exporter/dli-exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/dli-exporter/bin:$PATH
COPY --from=build /wheels /wheels
# Only the wheels built above: no index, so the image holds exactly what was tested. The group
# is made first with its own fixed id, so that USER 10001:10001 names a group that exists.
RUN python -m venv /opt/dli-exporter \
    && /opt/dli-exporter/bin/pip install --no-cache-dir --no-index --find-links=/wheels dli-exporter \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 dli-exporter \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin dli-exporter
USER 10001:10001
EXPOSE 9822
# Reads the same settings as the server (listen address, web config with TLS): it keeps working
# on another port or behind TLS and basic auth (/healthz is open).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["dli-exporter", "healthcheck"]
ENTRYPOINT ["dli-exporter"]
