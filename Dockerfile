# mixrec: multi-stage build. The builder compiles the release binary (the demo snapshot,
# config/default.toml and openapi.yaml are compiled in); the runtime image holds only the
# binary and runs it as an unprivileged user.
#
#   docker build -t mixrec .
#   docker run --rm -p 8080:8080 -e MIXREC_ADMIN_TOKEN=change-me mixrec
#   docker run --rm -p 8080:8080 -v /srv/ratings:/data:ro \
#     -e MIXREC__SNAPSHOT__PATH=/data/ratings.csv mixrec

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Cargo reads the [[bench]] targets while parsing the manifest, so benches/ must exist.
COPY benches benches
COPY src src
COPY config config
COPY data data
COPY web web
COPY build.rs openapi.yaml ./
RUN cargo build --release --locked --bin mixrec \
 && cp target/release/mixrec /usr/local/bin/mixrec

FROM debian:bookworm-slim
# No TLS, no libssl: the binary needs glibc only. No curl either: the health check is the
# binary's own `mixrec healthcheck`, a GET /healthz over a plain TCP socket.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mixrec \
 && mkdir -p /var/lib/mixrec/models && chown -R 10001:10001 /var/lib/mixrec
COPY --from=build /usr/local/bin/mixrec /usr/local/bin/mixrec
USER 10001:10001
# Settings come from the environment (MIXREC__SECTION__KEY, MIXREC_ADMIN_TOKEN); see
# config/default.toml for every key. Listen on all interfaces inside the container.
ENV MIXREC__SERVER__LISTEN=0.0.0.0:8080 \
    MIXREC__MODELS__DIR=/var/lib/mixrec/models \
    RUST_LOG=info
# Saved models: mount a volume here so a restarted container serves its last model at once.
VOLUME /var/lib/mixrec/models
EXPOSE 8080
# If you change the port above, change it here too.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["mixrec", "healthcheck", "--addr", "127.0.0.1:8080"]
# `docker stop` sends SIGTERM: in-flight requests finish and the process exits 0.
ENTRYPOINT ["mixrec"]
CMD ["serve"]
