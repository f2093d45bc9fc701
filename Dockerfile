# syntax=docker/dockerfile:1
# The nodenet agent image for linux/amd64 and linux/arm64: the addon built from source against
# Debian 12's libnl, libiptc, libnftnl and libmnl, and a slim runtime with only their shared
# libraries. Not built in CI (no container engine there); test/build/20.dockerfile.test.ts lints it
# and checks its runtime libraries against the prebuilt addon instead. Build both architectures with
#   docker buildx build --platform linux/amd64,linux/arm64 -t nodenet .
# on an amd64 machine or builder node.

# The build stage runs natively on the build machine for every target: compiling for arm64 under
# emulation would take many times longer than Debian's cross toolchain.
FROM --platform=$BUILDPLATFORM node:20-bookworm-slim AS build
ARG BUILDARCH
ARG TARGETARCH
# scripts/prebuild knows x64 as this machine's own toolchain and arm64 as Debian's x86-64-hosted
# cross toolchain, so only an amd64 build machine gives it both. Fail before minutes of apt-get.
RUN if [ "$BUILDARCH" != amd64 ]; then \
      echo "nodenet image: the build stage needs an amd64 build machine (this one is $BUILDARCH); use an amd64 buildx node" >&2; exit 1; \
    fi; \
    case "$TARGETARCH" in \
      amd64|arm64) ;; \
      *) echo "nodenet image: unsupported target architecture '$TARGETARCH'; build --platform linux/amd64 and/or linux/arm64" >&2; exit 1 ;; \
    esac
# cmake-js refuses to start without a native g++ even when the toolchain file hands the work to the
# cross compiler. iproute2 is here only for netem's distribution tables, copied below.
RUN set -eu; \
    libraries="libnl-3-dev libnl-route-3-dev libip4tc-dev libip6tc-dev libnftnl-dev libmnl-dev"; \
    if [ "$TARGETARCH" = arm64 ]; then \
      dpkg --add-architecture arm64; \
      target_packages="g++-aarch64-linux-gnu binutils-aarch64-linux-gnu $(for p in $libraries; do printf '%s:arm64 ' "$p"; done)"; \
    else \
      target_packages=$libraries; \
    fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends g++ make cmake pkg-config iproute2 $target_packages; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# The production dependencies are plain JavaScript, so a tree installed on the build machine serves
# every target; it is installed apart so that no development package reaches the image. Scripts are
# skipped: the root package's install script would build the addon, which scripts/prebuild does.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && mkdir -p /runtime \
 && mv node_modules /runtime/node_modules \
 && npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json CMakeLists.txt ./
COPY scripts/prebuild ./scripts/prebuild
COPY native ./native
COPY lib ./lib
# node-gyp-build names architectures as Node does (x64), Docker as Go does (amd64).
RUN case "$TARGETARCH" in amd64) arch=x64 ;; *) arch=$TARGETARCH ;; esac \
 && npx tsc -p tsconfig.json \
 && scripts/prebuild "$arch"
# netem's delay distribution tables (normal, pareto, paretonormal) are data the agent reads itself;
# the tc program is not needed. The files are the same on every architecture.
RUN mkdir -p /runtime/tc \
 && cp /usr/lib/x86_64-linux-gnu/tc/*.dist /runtime/tc/

FROM node:20-bookworm-slim
# native/runtime-packages.txt (the libraries the addon links against) and tini, nothing else: no
# compiler or -dev package ever reaches the image. test/build/20.dockerfile.test.ts keeps the two equal.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnl-3-200 libnl-route-3-200 libip4tc2 libip6tc2 libnftnl11 libmnl0 tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/nodenet
COPY --from=build /src/package.json ./
COPY --from=build /runtime/node_modules ./node_modules
COPY --from=build /src/dist/lib ./dist/lib
# Only the target's binary is there: the build context never carries prebuilds/. node-gyp-build
# picks it because the image has no build/ directory.
COPY --from=build /src/prebuilds ./prebuilds
COPY --from=build /runtime/tc/ /usr/lib/tc/
# tini as PID 1 forwards SIGTERM to node and reaps; the DaemonSets pass the subcommand as args.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/nodenet/dist/lib/cli/nodenet.js"]
CMD ["--help"]
