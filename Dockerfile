# syntax=docker/dockerfile:1

# The Node.js release of scripts/node-env.sh (IA_NODE_VERSION); a unit test keeps the two equal.
ARG NODE_IMAGE=node:24.22.3-slim

# Compiles TypeScript to dist/ with every dependency, dev tools included.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script to build: skipping them keeps the build offline-safe.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Installs the production dependencies only, so no compiler or test tool reaches the image.
FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Files stay owned by root and read-only for the service user.
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
# The official Node.js images ship this unprivileged user (uid 1000).
USER node
EXPOSE 3000
# Slim images have no curl; Node's built-in fetch checks liveness on the configured HTTP_PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HTTP_PORT ?? 3000}/health/live`).then((response) => process.exit(response.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main/server.js"]
