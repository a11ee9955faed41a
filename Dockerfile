# objfs images. Targets:
#   build    wheels of objfs and its dependencies (pyfuse3 is compiled against libfuse3)
#   swift    a Swift all-in-one from Debian's packages on 0.0.0.0:8080, tempauth test:tester/testing
#   runtime  ickpt, imgr and iclient with fuse3 and python3, no compiler (the default target)
#
#   docker build -t objfs .
#   docker build --target swift -t objfs-swift .
# docker-compose.yml builds both and starts Swift, ickpt, imgr and iclient.

ARG BASE=debian:12-slim

FROM ${BASE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        gcc libc6-dev pkg-config libfuse3-dev python3-dev python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY objfs/ objfs/
COPY imgr/ imgr/
COPY iclient/ iclient/
COPY ickpt/ ickpt/
COPY layout/ layout/
# The venv is built here and copied whole: its python is /usr/bin/python3 in both stages.
RUN python3 -m venv /opt/objfs/venv \
    && /opt/objfs/venv/bin/pip wheel --no-cache-dir --wheel-dir /wheels . \
    && /opt/objfs/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels objfs

FROM ${BASE} AS swift
LABEL org.opencontainers.image.title="objfs-swift" \
      org.opencontainers.image.description="OpenStack Swift all-in-one (Debian packages) for objfs development: tempauth test:tester/testing on port 8080" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        swift-proxy swift-account swift-container swift-object python3-swift memcached \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /srv/swift && chown swift:swift /srv/swift
COPY scripts/services/ /opt/objfs/scripts/services/
COPY docker/swift-aio.py docker/healthcheck.py /opt/objfs/docker/
USER swift
VOLUME /srv/swift
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s \
    CMD ["/opt/objfs/docker/healthcheck.py", "http://127.0.0.1:8080/healthcheck"]
ENTRYPOINT ["/opt/objfs/docker/swift-aio.py", "--dir", "/srv/swift", "--port", "8080"]

FROM ${BASE} AS runtime
LABEL org.opencontainers.image.title="objfs" \
      org.opencontainers.image.description="objfs daemons: ickpt, imgr, iclient (FUSE mount) and the objfs command" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 fuse3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/objfs --shell /usr/sbin/nologin objfs \
    && mkdir -p /var/lib/objfs /var/cache/objfs /etc/objfs \
    && chown objfs:objfs /var/lib/objfs
COPY --from=build /opt/objfs/venv /opt/objfs/venv
COPY docker/healthcheck.py docker/start-imgr.py docker/start-iclient.py /opt/objfs/docker/
ENV PATH=/opt/objfs/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
# ickpt and imgr run as objfs; iclient needs root (with /dev/fuse and CAP_SYS_ADMIN) to mount.
USER objfs
WORKDIR /var/lib/objfs
EXPOSE 32357 32356 15346 15347
CMD ["objfs", "--help"]
