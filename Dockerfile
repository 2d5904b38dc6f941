# syntax=docker/dockerfile:1
# Minimal image; issue #8 finishes it (non-root, init, healthcheck, extra CA bundle, slim runtime).
ARG BASE_IMAGE=node:20-bookworm-slim
FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM ${BASE_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
COPY templates ./templates
EXPOSE 3000
CMD ["node", "dist/main.js"]
