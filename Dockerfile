# The analyst console is bundled for the browser (console/README.md): its API types come from
# the API's own OpenAPI document, so this stage has the sources and the dev dependencies; only
# the bundle (console/dist) goes into the image.
FROM node:24-bookworm-slim AS console
WORKDIR /opt/gatewatch
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY core ./core
COPY ingest ./ingest
COPY parser ./parser
COPY detections ./detections
COPY api ./api
COPY inventory ./inventory
COPY embedded ./embedded
COPY console ./console
RUN npm run build:console

# Gatewatch processes (API, ingest, detection workers) share one image; the command picks
# the role. Node 24 runs the TypeScript sources directly (type stripping), so no build step.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/gatewatch
COPY package.json package-lock.json ./
# The `node` dev dependency (the runtime for fresh machines) is not needed here.
RUN npm install --omit=dev --ignore-scripts && npm cache clean --force
COPY core ./core
COPY ingest ./ingest
COPY parser ./parser
COPY detections ./detections
COPY api ./api
COPY inventory ./inventory
COPY embedded ./embedded
COPY operations ./operations
COPY cli ./cli
COPY samples ./samples
# The console, served at / by `gatewatch serve`.
COPY --from=console /opt/gatewatch/console/dist ./console/dist
USER node
ENTRYPOINT ["node", "cli/gatewatch.ts"]
CMD ["--help"]
