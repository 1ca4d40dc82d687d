# syntax=docker/dockerfile:1
#
# Every Bookinfo-RS image, from one file. Each runtime image is FROM scratch: one static
# binary, the `probe` helper (healthchecks, and the curl of the istio.io tasks), nothing
# else: no shell, no package manager, no libc to patch.
#
#   docker build --target productpage-v1 -t bookinfo-rs/productpage-v1 .
#   scripts/images.sh                     # every image, tagged, with a table of sizes
#
# The binaries come from one of two places (build argument BINARIES):
#   builder   (default) compiled here, in the Rust stage below: needs Docker and internet;
#             `--platform linux/arm64` builds arm64 images (natively or under emulation).
#   prebuilt  copied from docker/bin/<arch>/ in the build context, where scripts/images.sh
#             puts the static binaries it built on the host (no base image is pulled).

ARG BINARIES=builder

# ---- the static binaries, compiled in Docker --------------------------------------------
FROM rust:1.95 AS builder
ARG TARGETARCH
WORKDIR /src
COPY . .
# Static glibc (files and DNS lookups are built into glibc: name resolution works in an
# empty root). --target keeps RUSTFLAGS off build scripts and proc-macros. The proxy and the
# control plane are built on their own: one build of everything would unify features and
# link the services' HTTP stack into both.
RUN case "${TARGETARCH:-amd64}" in \
        amd64) triple=x86_64-unknown-linux-gnu ;; \
        arm64) triple=aarch64-unknown-linux-gnu ;; \
        *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
    && export RUSTFLAGS='-C target-feature=+crt-static' \
    && cargo build --release --locked --target "$triple" --bins \
        -p bookinfo-productpage -p bookinfo-details -p bookinfo-reviews -p bookinfo-ratings \
        -p mesh-ctl -p bookinfo-loadtest -p bookinfo-probe \
    && cargo build --release --locked --target "$triple" --bins -p mesh-proxy \
    && cargo build --release --locked --target "$triple" --bins -p mesh-control \
    && mkdir -p /out/bin /out/state \
    && mkdir -m 0770 /out/state/ca \
    && for b in productpage details reviews ratings mesh-proxy mesh-control meshctl loadgen chaos probe; do \
        cp "target/$triple/release/$b" /out/bin/; done \
    && cp /etc/ssl/certs/ca-certificates.crt /out/

FROM scratch AS binaries-builder
COPY --from=builder /out/ /

# ---- or the host's static binaries (scripts/images.sh) -----------------------------------
FROM scratch AS binaries-prebuilt
ARG TARGETARCH=amd64
COPY docker/bin/${TARGETARCH}/ /

# hadolint ignore=DL3006
FROM binaries-${BINARIES} AS binaries

# ---- what every runtime image shares ------------------------------------------------------
FROM scratch AS bare
# The public roots: the services' HTTP client will not start without a root store (and
# details v2 calls the books API over HTTPS itself when DO_NOT_ENCRYPT is not true).
COPY --from=binaries /ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PATH=/usr/local/bin
# Any non-root UID works (OpenShift's arbitrary UIDs included): nothing is written to the
# image's files (only mesh-control writes, to its CA volume: see its stage).
USER 65532:65532
LABEL org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Bookinfo-RS"

# With probe, the curl of these images (healthchecks, `probe exec`, the istio.io tasks'
# `curl` steps); mesh-control checks its own health and leaves it out.
FROM bare AS base
COPY --from=binaries /bin/probe /usr/local/bin/probe

# ---- the Bookinfo services: one image per version, as Istio's samples --------------------
FROM base AS service
EXPOSE 9080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/probe", "http://127.0.0.1:9080/health"]

FROM service AS productpage-v1
COPY --from=binaries /bin/productpage /usr/local/bin/productpage
ENV SERVICE_VERSION=v1 FLOOD_FACTOR=0
LABEL org.opencontainers.image.title="productpage-v1" \
      org.opencontainers.image.description="Bookinfo productpage: the web page and its JSON API"
ENTRYPOINT ["/usr/local/bin/productpage"]

FROM productpage-v1 AS productpage-v-flooding
ENV FLOOD_FACTOR=100
LABEL org.opencontainers.image.title="productpage-v-flooding"

FROM service AS details-v1
COPY --from=binaries /bin/details /usr/local/bin/details
ENV SERVICE_VERSION=v1 ENABLE_EXTERNAL_BOOK_SERVICE=false
LABEL org.opencontainers.image.title="details-v1" \
      org.opencontainers.image.description="Bookinfo details: book details as JSON"
ENTRYPOINT ["/usr/local/bin/details"]

FROM details-v1 AS details-v2
ENV SERVICE_VERSION=v2 ENABLE_EXTERNAL_BOOK_SERVICE=true
LABEL org.opencontainers.image.title="details-v2"

FROM service AS reviews-v1
COPY --from=binaries /bin/reviews /usr/local/bin/reviews
ENV SERVICE_VERSION=v1 ENABLE_RATINGS=false STAR_COLOR=black
LABEL org.opencontainers.image.title="reviews-v1" \
      org.opencontainers.image.description="Bookinfo reviews v1: no stars"
ENTRYPOINT ["/usr/local/bin/reviews"]

FROM reviews-v1 AS reviews-v2
ENV SERVICE_VERSION=v2 ENABLE_RATINGS=true STAR_COLOR=black
LABEL org.opencontainers.image.title="reviews-v2" \
      org.opencontainers.image.description="Bookinfo reviews v2: black stars, waits 10 s for ratings"

FROM reviews-v1 AS reviews-v3
ENV SERVICE_VERSION=v3 ENABLE_RATINGS=true STAR_COLOR=red
LABEL org.opencontainers.image.title="reviews-v3" \
      org.opencontainers.image.description="Bookinfo reviews v3: red stars, waits 2.5 s for ratings"

FROM service AS ratings-v1
COPY --from=binaries /bin/ratings /usr/local/bin/ratings
ENV SERVICE_VERSION=v1
LABEL org.opencontainers.image.title="ratings-v1" \
      org.opencontainers.image.description="Bookinfo ratings v1: in memory"
ENTRYPOINT ["/usr/local/bin/ratings"]

# v2 reads MySQL/MariaDB: set DB_TYPE=mysql and MYSQL_DB_* (compose/ratings-mysql.yaml).
FROM ratings-v1 AS ratings-v2
ENV SERVICE_VERSION=v2
LABEL org.opencontainers.image.title="ratings-v2" \
      org.opencontainers.image.description="Bookinfo ratings v2: MySQL/MariaDB (DB_TYPE=mysql)"

FROM ratings-v1 AS ratings-v-faulty
ENV SERVICE_VERSION=v-faulty
LABEL org.opencontainers.image.title="ratings-v-faulty" \
      org.opencontainers.image.description="Bookinfo ratings: 50 % of answers are 503"

FROM ratings-v1 AS ratings-v-delayed
ENV SERVICE_VERSION=v-delayed
LABEL org.opencontainers.image.title="ratings-v-delayed" \
      org.opencontainers.image.description="Bookinfo ratings: 50 % of answers take 7 s"

FROM ratings-v1 AS ratings-v-unavailable
ENV SERVICE_VERSION=v-unavailable
LABEL org.opencontainers.image.title="ratings-v-unavailable" \
      org.opencontainers.image.description="Bookinfo ratings: unavailable every other minute"

FROM ratings-v1 AS ratings-v-unhealthy
ENV SERVICE_VERSION=v-unhealthy
LABEL org.opencontainers.image.title="ratings-v-unhealthy" \
      org.opencontainers.image.description="Bookinfo ratings: unhealthy every other 15 minutes"

# ---- the mesh -------------------------------------------------------------------------------
# Sidecar (MESH_PROXY_MODE=sidecar) or ingress gateway (MESH_PROXY_MODE=gateway).
FROM base AS mesh-proxy
COPY --from=binaries /bin/mesh-proxy /usr/local/bin/mesh-proxy
EXPOSE 15006 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/probe", "http://127.0.0.1:15000/ready"]
LABEL org.opencontainers.image.title="mesh-proxy" \
      org.opencontainers.image.description="Bookinfo-RS mesh sidecar and ingress gateway"
ENTRYPOINT ["/usr/local/bin/mesh-proxy"]

# The control plane seeded like `meshctl up`: the shipped DestinationRules and gateway.
# meshctl runs on the host, against the published port (MESHCTL_CONTROL or --control).
FROM bare AS mesh-control
COPY --from=binaries /bin/mesh-control /usr/local/bin/mesh-control
COPY mesh/config/destination-rule-all.yaml mesh/config/bookinfo-gateway.yaml /etc/mesh/config/
# The CA root's directory (MESH_CONTROL_CA_DIR), for a volume: compose's named volume
# mesh-ca keeps the root across restarts and re-creations of the container, so proxies keep
# trusting each other's certificates. Docker and podman give a new named volume the owner
# and mode of the directory it is mounted over, and a volume is writable with a read-only
# root filesystem: owned by 65532 and group 0 (the group of OpenShift's arbitrary UIDs),
# mode 0770. The key inside is written 0600.
COPY --from=binaries --chown=65532:0 /state/ /var/lib/mesh-control/
ENV MESH_CONTROL_LISTEN=0.0.0.0:15010 \
    MESH_CONTROL_CONFIG_DIR=/etc/mesh/config
EXPOSE 15010
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/mesh-control", "healthcheck"]
LABEL org.opencontainers.image.title="mesh-control" \
      org.opencontainers.image.description="Bookinfo-RS mesh control plane and dashboard"
ENTRYPOINT ["/usr/local/bin/mesh-control"]

# ---- load and chaos ---------------------------------------------------------------------------
FROM base AS loadtest
COPY --from=binaries /bin/loadgen /bin/chaos /usr/local/bin/
COPY loadtest/experiments/ /etc/bookinfo/experiments/
WORKDIR /tmp
LABEL org.opencontainers.image.title="loadtest" \
      org.opencontainers.image.description="Bookinfo-RS load generator (loadgen) and chaos runner (chaos)"
ENTRYPOINT ["/usr/local/bin/loadgen"]
