# The upload gateway (sn46 gateway): FastAPI on uvicorn, Redis for replay and quotas, S3 for data.
#
# Multi-arch: the base is a multi-arch official image pinned by tag, and every package comes from pip,
# which picks the wheel for the build platform (amd64 or arm64); nothing here downloads an
# architecture-specific binary. Build for both with:
#   docker buildx build --platform linux/amd64,linux/arm64 -t sn46-gateway .
#
# Only the gateway's own dependencies are installed (not torch or dagster): the package goes in with
# --no-deps, so this list must follow what sn46_pipelines/gateway imports.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN pip install \
        "fastapi>=0.110,<1" \
        "uvicorn[standard]>=0.29,<1" \
        "redis>=5,<9" \
        "boto3>=1.34,<2" \
        "bittensor>=11.3,<12" \
        "pydantic>=2.6,<3" \
        "pyyaml>=6,<7"

COPY pyproject.toml README.md ./
COPY sn46_pipelines ./sn46_pipelines
COPY config ./config
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --create-home --home-dir /home/sn46 sn46

USER sn46
# SN46_ENV picks config/<env>.yaml; S3_BUCKET, REDIS_URL and the rest override it (docs/gateway.md).
ENV SN46_ENV=prod \
    SN46_CONFIG_DIR=/app/config \
    SN46_HOME=/home/sn46
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import json, urllib.request, sys; r = urllib.request.urlopen('http://127.0.0.1:8000/healthcheck', timeout=4); sys.exit(json.load(r)['status'] != 'ok')"]
CMD ["python", "-m", "sn46_pipelines.gateway", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
