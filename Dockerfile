# archgate: a static binary on an empty base image, for linux/amd64 and linux/arm64 (archgate
# itself runs on the Raspberry Pi workers too). Without a container daemon or a base image to
# pull, scripts/build-image builds the same image (and scripts/run-image runs it as the
# Deployment does); with Docker:
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/archgate/archgate:0.1.0 --push .
#
# Each platform builds natively (under QEMU emulation on a foreign builder): musl makes the binary
# static, so the runtime image holds nothing but it and the CA certificates registries need:
# archgate reads the system store at /etc/ssl/certs/ca-certificates.crt (or SSL_CERT_FILE), so
# a private registry's CA can be added there, or per host with `ca_file` in registries.toml.

FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY policies policies
RUN cargo build --release --locked --bin archgate \
    && strip target/release/archgate

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/release/archgate /archgate
# The distroless "nonroot" user: no shell, no home, no privileges; the manifests pin the same id.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/archgate"]
CMD ["serve", "--policy", "/etc/archgate/policy.toml", "--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key"]
