# mailpush: build every binary, then a small runtime image running as a non-root user.
#   docker build -t mailpush .
#   docker run -p 8080:8080 -v mailpush-data:/var/lib/mailpush mailpush
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mailpush-bin -p mailpush-api-bin -p mailpush-smtp-bin -p mailpush-worker-bin \
    && install -D -m 0755 -t /out target/release/mailpush target/release/mailpush-api \
       target/release/mailpush-smtp target/release/mailpush-worker

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/mailpush --create-home --uid 10025 mailpush
COPY --from=build /out/ /usr/local/bin/
USER mailpush
WORKDIR /var/lib/mailpush
ENV MAILPUSH_DATA_DIR=/var/lib/mailpush \
    MAILPUSH_API_LISTEN=0.0.0.0:8080
VOLUME /var/lib/mailpush
EXPOSE 8080 587 465 2525
ENTRYPOINT ["mailpush"]
CMD ["serve"]
