# One image for every member; the compose service chooses the entry point.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY shared ./shared
COPY services ./services
COPY gateway ./gateway
COPY scripts ./scripts
USER node
# Overridden per service in docker-compose.yml.
CMD ["node", "--import", "tsx", "services/municipality/main.ts"]
