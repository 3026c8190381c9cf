# dli-exporter: build a wheel (and its dependencies' wheels), install them into a venv on a slim
# image, run as a fixed non-root user. `docker build -t dli-exporter .`

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/dli-exporter/bin:$PATH
COPY --from=build /wheels /wheels
# Only the wheels built above: no index, so the image holds exactly what was tested.
RUN python -m venv /opt/dli-exporter \
    && /opt/dli-exporter/bin/pip install --no-cache-dir --no-index --find-links=/wheels dli-exporter \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin dli-exporter
USER 10001:10001
EXPOSE 9822
HEALTHCHECK --interval=30s --timeout=5s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9822/healthz', timeout=4)"]
ENTRYPOINT ["dli-exporter"]
