# The producer image: Node 24, the line the project runs on locally and in CI. Built by `sst deploy`
# from the repository root (stacks/Pipeline.ts); not built in CI, where
# tests/integration/built-bundles.test.ts runs the same bundle (`npm run build:producer`) against
# the local stack instead.
#
# Stage 1 bundles services/producer/main.ts into one ES module with a source map (npm packages stay
# imports). Running the bundle instead of the sources through tsx saves ~33 MB of resident memory and
# ~0.9 s of start-up per task on a quiet machine, more under load (`npm run bench:startup`).
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY events ./events
COPY topology ./topology
COPY monitoring ./monitoring
COPY services ./services
COPY scripts/build-producer.ts ./scripts/
RUN npm run build:producer

# Stage 2: production dependencies and the bundle, nothing else.
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist/producer ./dist/producer
USER node
# SIGTERM reaches node directly (exec form): the producer commits, checkpoints and exits.
# The flags are PRODUCER_NODE_FLAGS of scripts/build-producer.ts (source maps; a 16 MiB young generation
# semi-space, which keeps the peak RSS of a long job ~90 MB lower at the same speed).
CMD ["node", "--enable-source-maps", "--max-semi-space-size=16", "dist/producer/main.mjs"]
