# clusterguard: one image for the orchestrator, the node agents and the CLI.
# Build:  docker build -t clusterguard .
# The workflow code is bundled at build time (CG_WORKFLOW_BUNDLE), so the orchestrator starts
# without webpack; the node agent runs ZooKeeper and Kafka from /app/resources/bin with the
# image's Java when the node's configuration enables them.

# --- build: dev dependencies, the pre-built workflow bundle ------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY scripts ./scripts
RUN npm run build:bundle

# --- runtime: production dependencies only, a non-root user --------------------------------------
FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
  && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist/workflow-bundle.js ./dist/workflow-bundle.js
COPY tsconfig.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY bin ./bin
RUN groupadd --system clusterguard \
  && useradd --system --gid clusterguard --home-dir /var/lib/clusterguard --create-home clusterguard \
  && mkdir -p /ibnsdata/guard /app/resources/bin \
  && chown -R clusterguard:clusterguard /ibnsdata/guard /var/lib/clusterguard
ENV NODE_ENV=production \
    CG_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js \
    CG_MIDDLEWARE__BIN_DIR=/app/resources/bin
USER clusterguard
ENTRYPOINT ["/usr/bin/tini", "--"]
# The orchestrator by default; agents run `node --import tsx worker/node-agent.ts`.
CMD ["node", "--import", "tsx", "worker/orchestrator.ts"]
