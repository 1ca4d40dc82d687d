#!/usr/bin/env bash
# Builds every Bookinfo-RS image from static binaries built on this machine, tags them
# REGISTRY/<image>:TAG and prints their sizes. No base image is pulled: the images are
# FROM scratch, and the binaries are linked statically against glibc.
#
#   scripts/images.sh                   # every image, for this machine's architecture
#   scripts/images.sh reviews-v2 ...    # only these images
#   scripts/images.sh --no-compile      # package the binaries built last time
#   scripts/images.sh --list            # the image names, one a line
#
# Environment: REGISTRY (localhost/bookinfo-rs), TAG (dev), ENGINE (docker when its
# daemon answers, else podman), STATIC_TARGET_DIR (target/static: its own target folder,
# so the normal build is not invalidated), PLATFORM (linux/amd64).
#
# arm64: PLATFORM=linux/arm64 cross-compiles for aarch64-unknown-linux-gnu, which needs
# `rustup target add aarch64-unknown-linux-gnu` and a cross linker
# (`apt-get install gcc-aarch64-linux-gnu`); not exercised by CI. With Docker and
# internet, `docker buildx build --platform linux/amd64,linux/arm64 --target <image> .`
# compiles inside the Rust image instead (see the Dockerfile).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

REGISTRY=${REGISTRY:-localhost/bookinfo-rs}
TAG=${TAG:-dev}
PLATFORM=${PLATFORM:-linux/amd64}
STATIC_TARGET_DIR=${STATIC_TARGET_DIR:-$repo/target/static}
# The limit every image must stay under (uncompressed).
MAX_MB=15

IMAGES=(
    productpage-v1 productpage-v-flooding
    details-v1 details-v2
    reviews-v1 reviews-v2 reviews-v3
    ratings-v1 ratings-v2 ratings-v-faulty ratings-v-delayed ratings-v-unavailable ratings-v-unhealthy
    mesh-proxy mesh-control loadtest
)
BINARIES=(productpage details reviews ratings mesh-proxy mesh-control meshctl loadgen chaos probe)
# One cargo invocation per group: cargo unifies the features of every package it builds at
# once, so a single build would link the services' HTTP stack into the proxy and the
# control plane (about 1 MB more in mesh-control, enough to break the size limit).
BUILD_GROUPS=(
    "bookinfo-productpage bookinfo-details bookinfo-reviews bookinfo-ratings mesh-ctl bookinfo-loadtest bookinfo-probe"
    "mesh-proxy"
    "mesh-control"
)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'images.sh: %s\n' "$*" >&2; exit 1; }

compile=1
selected=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-compile) compile=0 ;;
        --list) printf '%s\n' "${IMAGES[@]}"; exit 0 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (try --help)" ;;
        *)
            printf '%s\n' "${IMAGES[@]}" | grep -qx -- "$1" || die "no image $1 (scripts/images.sh --list)"
            selected+=("$1") ;;
    esac
    shift
done
[ ${#selected[@]} -gt 0 ] || selected=("${IMAGES[@]}")

case "$PLATFORM" in
    linux/amd64) arch=amd64; triple=x86_64-unknown-linux-gnu ;;
    linux/arm64) arch=arm64; triple=aarch64-unknown-linux-gnu
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-aarch64-linux-gnu-gcc}
        export CC_aarch64_unknown_linux_gnu=${CC_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-gcc}
        rustup target list --installed 2>/dev/null | grep -qx "$triple" \
            || die "arm64 needs the Rust target: rustup target add $triple (and apt-get install gcc-aarch64-linux-gnu)"
        command -v aarch64-linux-gnu-gcc >/dev/null \
            || die "arm64 needs a cross linker: apt-get install gcc-aarch64-linux-gnu" ;;
    *) die "PLATFORM $PLATFORM: linux/amd64 or linux/arm64" ;;
esac

if [ -z "${ENGINE:-}" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker
    elif command -v podman >/dev/null; then ENGINE=podman
    else die "neither a Docker daemon nor podman is available (apt-get install podman runc)"; fi
fi

out="$STATIC_TARGET_DIR/$triple/release"
if [ "$compile" = 1 ]; then
    say "Building static binaries for $triple into $STATIC_TARGET_DIR (release, fat LTO: minutes on 2 cores)"
    started=$SECONDS
    for group in "${BUILD_GROUPS[@]}"; do
        args=()
        for p in $group; do args+=(-p "$p"); done
        say "  cargo build ${args[*]}"
        # --target keeps RUSTFLAGS off build scripts and proc-macros, which run on the host.
        CARGO_TARGET_DIR="$STATIC_TARGET_DIR" RUSTFLAGS='-C target-feature=+crt-static' \
            cargo build --release --locked --quiet --target "$triple" "${args[@]}" --bins
    done
    say "Static binaries built in $((SECONDS - started)) s"
fi

stage="$repo/docker/bin/$arch"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/state"
# mesh-control's CA directory, empty: the Dockerfile copies it with its owner set (a
# FROM scratch stage cannot mkdir).
mkdir -m 0770 "$stage/state/ca"
for b in "${BINARIES[@]}"; do
    [ -x "$out/$b" ] || die "$out/$b is missing: run without --no-compile"
    if [ "$arch" = amd64 ] && ! LC_ALL=C ldd "$out/$b" 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then
        die "$out/$b is not statically linked: a FROM scratch image could not run it"
    fi
    cp "$out/$b" "$stage/bin/$b"
done
# The public roots for every image: the HTTP client of the services refuses to start
# without a root store (and details v2 may call the books API over HTTPS itself).
[ -r /etc/ssl/certs/ca-certificates.crt ] || die "no /etc/ssl/certs/ca-certificates.crt here: apt-get install ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$stage/ca-certificates.crt"

build_flags=(--platform "$PLATFORM" --build-arg BINARIES=prebuilt --build-arg "TARGETARCH=$arch")
# podman writes OCI images by default, which drop HEALTHCHECK; Docker's format keeps it.
[ "$ENGINE" = podman ] && build_flags+=(--format docker)

say "Packaging ${#selected[@]} images with $ENGINE as $REGISTRY/<image>:$TAG"
started=$SECONDS
for image in "${selected[@]}"; do
    "$ENGINE" build --quiet "${build_flags[@]}" --target "$image" -t "$REGISTRY/$image:$TAG" . >/dev/null \
        || die "building $image failed (run: $ENGINE build ${build_flags[*]} --target $image .)"
done
say "Packaged in $((SECONDS - started)) s"

printf '\n%-24s %10s  %s\n' image size "$REGISTRY/<image>:$TAG"
too_big=()
for image in "${selected[@]}"; do
    bytes=$("$ENGINE" image inspect --format '{{.Size}}' "$REGISTRY/$image:$TAG")
    mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1000000 }')
    printf '%-24s %7s MB\n' "$image" "$mb"
    awk -v b="$bytes" -v m="$MAX_MB" 'BEGIN { exit !(b > m * 1000000) }' && too_big+=("$image")
done
if [ ${#too_big[@]} -gt 0 ]; then
    die "over ${MAX_MB} MB: ${too_big[*]}"
fi
printf 'every image is under %s MB uncompressed\n' "$MAX_MB"
