# secretbot container image.
#
#   docker build --build-arg VERSION="$(git describe --always --dirty)" -t secretbot .
#   (or: make image)
#
# Run it with the config mounted at /etc/secretbot/secretbot.yaml and the
# credentials in the environment (SLACK_APP_TOKEN, SLACK_BOT_TOKEN, VAULT_ADDR,
# VAULT_ROLE_ID/VAULT_SECRET_ID or VAULT_TOKEN, SECRETBOT_AUDIT_KEY, ...).
# In the config set storage.path to /var/lib/secretbot/secretbot.db (the
# volume) and ops.listen to 0.0.0.0:9090 so the health/metrics port is
# reachable from outside the container.

# The builder runs `make build`, the same command CI and developers run.
# The official golang image ships make.
FROM golang:1.26 AS build
WORKDIR /src

# Module downloads get their own layer, reused while go.mod/go.sum are unchanged.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
# .git is not in the build context, so the version comes in as a build arg
# (the Makefile falls back to "dev" when it is empty).
ARG VERSION=
RUN make build VERSION="${VERSION}" \
 && ./bin/secretbot version \
 && mkdir -p /out/etc/secretbot /out/var/lib/secretbot

# distroless/static: CA certificates, /etc/passwd with the nonroot user, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/secretbot /secretbot
# The config directory stays root-owned (the bot only reads it); the data
# directory belongs to the runtime user so a fresh named volume is writable.
COPY --from=build /out/etc/secretbot /etc/secretbot
COPY --from=build --chown=65532:65532 /out/var/lib/secretbot /var/lib/secretbot
USER 65532:65532
WORKDIR /var/lib/secretbot
VOLUME ["/etc/secretbot", "/var/lib/secretbot"]
EXPOSE 9090
ENTRYPOINT ["/secretbot"]
CMD ["run", "--config", "/etc/secretbot/secretbot.yaml"]
