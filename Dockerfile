# changeledger: one image for the API (default command) and the projector
# (`node dist/apps/projector/src/main.js`). Build: `docker build -t changeledger .`

ARG NODE_IMAGE=node:20-bookworm-slim

# --- toolchain: better-sqlite3 compiles from source when no prebuilt binary can be fetched ---
FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# The image's npm (10) ignores package.json's allowScripts: install with no dependency's install
# script, then build the one allowScripts approves (better-sqlite3's native module), so the
# image runs what CI reviewed and nothing else (no install telemetry either).
ENV SCARF_ANALYTICS=false

# --- build: all dependencies, then tsc + tsc-alias into dist/ ---
FROM toolchain AS build
# node-gyp uses the image's own Node headers instead of downloading them (as .ci/run does).
RUN if [ -f /usr/local/include/node/node.h ]; then export npm_config_nodedir=/usr/local; fi \
  && npm ci --ignore-scripts --no-audit --no-fund \
  && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY apps ./apps
COPY libs ./libs
COPY bench ./bench
RUN npm run build

# --- prod-deps: runtime dependencies only, native modules compiled against this Node ---
FROM toolchain AS prod-deps
RUN if [ -f /usr/local/include/node/node.h ]; then export npm_config_nodedir=/usr/local; fi \
  && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm rebuild better-sqlite3 \
  && npm cache clean --force

# --- runtime: no compiler, no dev dependencies, no sources, not root ---
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/data
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/apps ./dist/apps
COPY --from=build /app/dist/libs ./dist/libs
COPY package.json ./
# `npm run audit:verify`, `backup`, `projections:rebuild`… run their pre-script first: with no
# tsconfig.build.json here it builds nothing (docker compose exec api npm run audit:verify)
COPY apps/cli/build-if-stale.mjs ./apps/cli/
# DATA_DIR holds the embedded stores (SQLite) and the Idempotency-Key store; a volume mounted
# here starts out owned by `node` too.
RUN mkdir -p /app/data && chown node:node /app/data
# a volume even with a plain `docker run`: the event log (and the generated jwt-secret) must not
# live in the container's writable layer, gone with `docker rm`
VOLUME /app/data
USER node
EXPOSE 3000
# No curl in slim images: Node's fetch. 503 (event store or read models down) is unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/api/v1/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/apps/api/src/main.js"]
