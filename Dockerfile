# syntax=docker/dockerfile:1
# Build: docker build -t incident-bot .
# Run:   docker run --init -p 8080:8080 -v incident-bot-data:/var/lib/incident-bot --env-file bot.env incident-bot
#        (--init reaps what runbook steps leave behind; see deploy/README.md)

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/bot ./cmd/bot

# Debian slim rather than distroless: runbook actions run real programs
# (getent, curl; add kubectl or the aws CLI in a derived image).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/incident-bot --create-home bot
COPY --from=build /out/bot /usr/local/bin/bot
COPY runbooks/ /etc/incident-bot/runbooks/
COPY templates/ /etc/incident-bot/templates/
ENV BOT_DB=/var/lib/incident-bot/bot.db \
    BOT_RUNBOOKS_DIR=/etc/incident-bot/runbooks \
    BOT_TEMPLATES_DIR=/etc/incident-bot/templates \
    BOT_ADDR=:8080
USER 10001:10001
VOLUME ["/var/lib/incident-bot"]
EXPOSE 8080
ENTRYPOINT ["bot"]
CMD ["serve"]
