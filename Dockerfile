# syntax=docker/dockerfile:1
# Grafana with the Akamai eStats data source plugin built from this repository, its data
# sources, dashboard and example alert rule provisioned. `docker compose up --build` uses it.
#
# The two build stages run the same commands as `make dist` (keep them in step: the test
# tests/deploy_files.rs compares them with the Makefile).

# Backend: the plugin executable, linked statically so it runs in any Grafana image
# (the official one is Alpine-based today, Ubuntu-based variants exist).
FROM rust:1-bookworm AS backend
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --release --target x86_64-unknown-linux-gnu --bin gpx_akamai_estats \
    && mkdir -p /out \
    && cp target/x86_64-unknown-linux-gnu/release/gpx_akamai_estats /out/gpx_akamai_estats_linux_amd64

# Frontend: module.js, plugin.json (with its build date) and img/ into /src/dist.
FROM node:20-bookworm AS frontend
WORKDIR /src/frontend
# Dependencies first, so editing the sources does not reinstall them.
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci
COPY . /src
RUN npm run build

FROM grafana/grafana:13.2.3
ENV GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=akamai-estats-datasource
COPY --from=frontend /src/dist/ /var/lib/grafana/plugins/akamai-estats-datasource/
COPY --from=backend --chmod=0755 /out/gpx_akamai_estats_linux_amd64 /var/lib/grafana/plugins/akamai-estats-datasource/gpx_akamai_estats_linux_amd64
COPY provisioning/ /etc/grafana/provisioning/
# The history volume is mounted here; a named volume takes over this directory's owner (the
# grafana user) when it is first created, so the plugin can write its SQLite file.
RUN mkdir -p /var/lib/grafana/akamai-estats
