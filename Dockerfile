# Two images from one build:
#   docker build -t steadfast:dev .                        the product: Steadfast's services only
#   docker build --target fakes -t steadfast-fakes:dev .   stand-ins for the dev stack (compose)
# Each compose service or Deployment picks its binary by command.
#
# CARGO_PROFILE picks the Cargo profile: `release` (the default: fat LTO, what is deployed) or
# `quick-release` (no LTO, incremental; what compose.yaml builds for development, see
# docs/deploy.md for both builds' times).
#
# The product stage copies an explicit list of binaries, never "whatever was built":
# scripts/check-deploy.sh fails if a stand-in (a package under services/fakes/) is named there.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ARG PRODUCT_BINARIES="webhook-receiver pipeline-herder sentinel adapter alert-reconciler console steadfast-recipe steadfastctl"
ARG FAKE_BINARIES="fleet-api fake-gitlab fake-kube fake-webex"
ARG CARGO_PROFILE=release
# scripts/container-build.sh: one cargo build of both lists, rebuilding exactly what changed
# since the last build in the shared target/ cache (it says why that needs care).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE="$CARGO_PROFILE" PRODUCT_BINARIES="$PRODUCT_BINARIES" FAKE_BINARIES="$FAKE_BINARIES" \
    sh scripts/container-build.sh

FROM docker.io/library/debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Nonroot, as in distroless images; nothing in the image needs root.
USER 65532:65532
ENV LOG_FORMAT=json

FROM runtime AS fakes
COPY --from=build /out/fakes/ /usr/local/bin/

# Last, so a plain `docker build .` gives the product image.
FROM runtime AS product
COPY --from=build /out/product/ /usr/local/bin/
