# syntax=docker/dockerfile:1
# Tierflight: multi-stage build, runs as a non-root user.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The image's Node 24 runs everything: drop the `node` devDependency's launcher, which
# --ignore-scripts leaves without its binary (outside Docker it brings Node 24 to npm scripts).
RUN npm ci --ignore-scripts && rm -f node_modules/.bin/node
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY proto ./proto
COPY config ./config
RUN mkdir -p /app/data && chown -R node:node /app/data \
    && ln -s /app/dist/cli/main.js /usr/local/bin/tierflight
USER node
# Flight, and the metrics/health port.
EXPOSE 8815 9464
# The image's config listens on all interfaces and keeps its data in /app/data. A config
# you mount is used as written: set TIERFLIGHT_CONFIG to it (or run `serve --config FILE`).
ENV TIERFLIGHT_CONFIG=/app/config/docker.yaml
# glibc reuses the memory of flights that go for the next puts (src/cli/node-flags.ts).
ENV MALLOC_MMAP_THRESHOLD_=33554432
# A bind-mounted /app/data must be writable by uid 1000 (the image's `node` user).
VOLUME ["/app/data"]
ENTRYPOINT ["node", "--initial-old-space-size=256", "--external-memory-accounted-in-global-limit", "--heap-growing-percent=100", "--expose-gc", "dist/cli/main.js"]
CMD ["serve"]
