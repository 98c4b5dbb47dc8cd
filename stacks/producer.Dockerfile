# The producer image: Node 24, the line the project runs on locally and in CI, production dependencies
# only, TypeScript run through tsx (a runtime dependency), so the image runs exactly the source the
# tests ran. Built by `sst deploy` from the repository root (stacks/Pipeline.ts); not built in CI.
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY events ./events
COPY topology ./topology
COPY monitoring ./monitoring
COPY services ./services
USER node
# SIGTERM reaches node directly (exec form): the producer commits, checkpoints and exits.
CMD ["node", "--import", "tsx", "services/producer/main.ts"]
