# The repository with its dependencies installed and its code generated (proto, contract
# artifacts + ABI, Prisma clients: the root postinstall). docker-compose.yml runs every service
# of the stack from this one image with a different command.
FROM node:24-bookworm-slim
WORKDIR /app
# The whole tree: the postinstall needs proto/, contracts/ and each service's prisma/ anyway.
COPY . .
# npm runs under the image's Node 24, so Hardhat's native EDR package is installed.
RUN npm ci && npm cache clean --force
# tsx, hardhat, buf... on PATH, as `npm run` would have them; the services run without npm in
# between so that `docker stop` (SIGTERM via the init process) reaches them directly.
ENV PATH=/app/node_modules/.bin:$PATH
