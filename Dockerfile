# syntax=docker/dockerfile:1
# pullprobe's container image: Node 24 LTS (the code itself runs on Node >= 20.18),
# built in one stage, run from a distroless one as uid 65532 with production
# dependencies only.
#
# Base images are pinned by tag. To pin by digest as well (recommended for
# your own builds), look the digests up and append them, e.g.:
#   docker buildx imagetools inspect node:24-bookworm-slim            # "Digest: sha256:…"
#   docker buildx imagetools inspect gcr.io/distroless/nodejs24-debian12:nonroot
#   FROM node:24-bookworm-slim@sha256:<digest> AS build
# and refresh them the same way when the tags move (security fixes). The
# project's build machines cannot reach an image registry, so no digest is
# written here that could not be checked.
#
# test/unit/image-layout.test.ts runs this file's build-stage RUN commands as
# plain shell and starts the runtime layout as uid 65532 with an empty
# environment and a read-only root; no container engine runs in the tests.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
# npm run build (scripts/build.mjs) bundles src/ with esbuild into dist/ (one file per command, loaded lazily;
# undici, dns-packet, smol-toml and ipaddr.js inside), so a CLI run reads a few files
# instead of ~150 modules. pino, prom-client, @grpc/grpc-js and yaml (read only for an agent or
# credential-provider config) stay in node_modules.
RUN npm ci --no-audit --no-fund && npm run build
# Production dependencies only, installed apart (no dev tools, no install scripts).
RUN mkdir -p /prod && cp package.json package-lock.json /prod/ && cd /prod && npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM gcr.io/distroless/nodejs24-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="pullprobe" \
      org.opencontainers.image.description="Can this node pull images from each registry it needs, and if not, why? A node-side image-pull path prober." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs24-debian12:nonroot"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /prod/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/package.json ./
USER 65532:65532
EXPOSE 9808
# distroless/nodejs's entrypoint is node itself.
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli.js"]
CMD ["agent", "--config", "/etc/pullprobe/config.yaml"]
