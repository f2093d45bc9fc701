# syntax=docker/dockerfile:1
# The nodenet agent image: the addon built from source against Debian 12's libnl, libiptc, libnftnl
# and libmnl, and a slim runtime with only their shared libraries. Not built in CI (no container
# engine there).

FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make python3 pkg-config \
      libnl-3-dev libnl-route-3-dev libip4tc-dev libip6tc-dev libnftnl-dev libmnl-dev iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json binding.gyp CMakeLists.txt ./
COPY native ./native
COPY lib ./lib
RUN npx tsc -p tsconfig.json \
 && npx node-gyp rebuild \
 && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnl-3-200 libnl-route-3-200 libip4tc2 libip6tc2 libnftnl11 libmnl0 tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/nodenet
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/lib ./dist/lib
COPY --from=build /src/build/Release/nodenet.node ./build/Release/nodenet.node
# netem's delay distribution tables (normal, pareto, paretonormal): data from iproute2, read by the
# agent itself; the tc program is not needed.
COPY --from=build /usr/lib/x86_64-linux-gnu/tc/*.dist /usr/lib/tc/
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/nodenet/dist/lib/cli/nodenet.js"]
CMD ["--help"]
