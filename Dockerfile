# flightdeck's image: a build stage (all dependencies, TypeScript compiled to dist/), then a slim
# runtime with production dependencies only, running as the non-root user `node` under tini.
#
#   docker build --network host -t flightdeck/flightdeck:0.1.0 .
#
# BASE_IMAGE needs Node.js >= 20 with npm, /bin/sh, a user `node` (uid 1000) and tini at
# /sbin/tini. The default is assembled on this machine by scripts/build-base-image.sh (no registry
# is needed); an image built FROM node:20-bookworm-slim plus the `tini` package works as well.
#
# Behind a TLS-intercepting proxy, put its CA certificate(s) as *.pem or *.crt files in deploy/ca/
# (git ignores them there): npm trusts them during the build only; they do not reach the runtime
# image. See docs/install.md. (The legacy builder has no build secrets, hence a file in the context.)
ARG BASE_IMAGE=flightdeck/node-base:20

FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY deploy/ca/ /tmp/extra-ca/
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# Few layers (the daemon may copy every layer in full). `npm install` rather than `npm ci`: the lock
# file lists the optional platform packages of this platform only, which `npm ci` rejects.
RUN set -e; \
    cat /tmp/extra-ca/*.pem /tmp/extra-ca/*.crt > /tmp/extra-ca.pem 2>/dev/null || true; \
    if [ -s /tmp/extra-ca.pem ]; then export NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem; fi; \
    npm install --no-audit --no-fund --loglevel=warn; \
    rm -rf /root/.npm
COPY src ./src
RUN set -e; \
    if [ -s /tmp/extra-ca.pem ]; then export NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem; fi; \
    npx tsc -p tsconfig.build.json; \
    npm prune --omit=dev --no-audit --no-fund --loglevel=warn; \
    rm -rf /root/.npm

FROM ${BASE_IMAGE}
WORKDIR /app
ENV NODE_ENV=production \
    PORT=3000 \
    FLIGHTDECK_CONFIG=/etc/flightdeck/flightdeck.yml
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY templates ./templates
USER node
EXPOSE 3000
# tini is PID 1: it forwards SIGTERM to node (graceful shutdown) and reaps child processes.
ENTRYPOINT ["/sbin/tini", "--"]
CMD ["node", "dist/main.js"]
# /healthz answers while the process is alive; /readyz (dependencies) is for load balancers.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
