# syntax=docker/dockerfile:1
# One image for every sn46 process, chosen by the command (deploy/entrypoint.sh):
#
#   docker run IMAGE code-location | webserver | daemon | gateway | inference
#   docker run IMAGE sn46 demo seed            (or any other command)
#
# Build (docs/images.md has the rest):
#   docker buildx build --platform linux/amd64,linux/arm64 -t sn46-pipelines:0.1.0 .
#   docker build --build-arg TORCH_VARIANT=cu128 -t sn46-pipelines:0.1.0-cu128 .     # GPU training image
#
# Multi-arch: the base is an official multi-arch image pinned by tag, and every package is a wheel pip
# picks for the build platform; --only-binary makes a dependency without a wheel for that platform fail the
# build instead of compiling, so no compiler is needed (every dependency but torch has amd64 and arm64
# wheels for CPython 3.11 on glibc 2.36, checked with `pip install --dry-run --platform ...`; torch's come
# from PyTorch's index, see docs/images.md).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

# torch goes in first, from PyTorch's own index: the project asks for torch>=2.4, which resolved on PyPI
# is a CUDA build with about 4 GB of NVIDIA libraries. Once torch is installed, the project's requirement
# is met and pip installs no other torch. TORCH_VARIANT=cpu (the default) keeps the image small;
# cu126, cu128, ... build a GPU training image (the CUDA runtime comes in the wheels; the host needs the
# NVIDIA driver and container toolkit). TORCH_INDEX_URL replaces the index, e.g. with a mirror.
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv \
    && pip install --only-binary=:all: --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY sn46_pipelines ./sn46_pipelines
# The project is built into a wheel here (setuptools stays in this stage); the runtime gets the venv only.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install --only-binary=:all: "$(echo /wheels/sn46_pipelines-*.whl)[deploy]"


FROM ${PYTHON_IMAGE}

# ARROW_DEFAULT_MEMORY_POOL: every run worker, code server and gateway in this image allocates with
# jemalloc (sn46_pipelines/allocator.py says why); a deployment may set its own.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    SN46_ENV=prod \
    SN46_HOME=/var/lib/sn46 \
    DAGSTER_HOME=/opt/dagster/home \
    ARROW_DEFAULT_MEMORY_POOL=jemalloc

# A non-root user (numeric, so Kubernetes' runAsNonRoot can check it) owning the only writable folders:
# SN46_HOME (local stores, the gateway's SQLite ledger) and DAGSTER_HOME (mount dagster.yaml there).
RUN groupadd --system --gid 10001 sn46 \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sn46 --create-home \
        --shell /usr/sbin/nologin sn46 \
    && install -d -o 10001 -g 10001 /opt/dagster/home

COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/sn46-entrypoint

USER 10001:10001
WORKDIR /var/lib/sn46
# code location (gRPC), webserver, gateway, inference
EXPOSE 4000 3000 8000 8080
# Probes whichever role the container runs (the gateway by default): see deploy/entrypoint.sh.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["sn46-entrypoint", "health"]
ENTRYPOINT ["sn46-entrypoint"]
CMD ["gateway", "--workers", "2"]
