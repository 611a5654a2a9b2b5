# syntax=docker/dockerfile:1
# Grafana with the Akamai eStats data source plugin built from this repository, its data
# sources, dashboard and example alert rule provisioned. `docker compose up --build` uses it.
#
# The build stages run the Makefile's targets (`make dist-backend`, `make dist-frontend`), so
# the image holds what `make dist` builds. They run on the platform the image is built for
# (TARGETARCH: amd64 or arm64), and the plugin executable is named after it.

# The Grafana image the plugin is installed in; docker-compose.yml passes its GRAFANA_VERSION.
ARG GRAFANA_VERSION=13.2.3

# Backend: the plugin executable, linked statically so it runs in any Grafana image
# (the official one is Alpine-based today, Ubuntu-based variants exist).
FROM rust:1-bookworm AS backend
ARG TARGETARCH
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=target-${TARGETARCH} \
    make dist-backend ARCH=${TARGETARCH}

# Frontend: module.js, plugin.json (with its build date) and img/ into /src/dist.
FROM node:20-bookworm AS frontend
WORKDIR /src
# Dependencies first, so editing the sources does not reinstall them.
COPY Makefile ./
COPY frontend/package.json frontend/package-lock.json frontend/
RUN make frontend-deps
COPY . .
RUN make dist-frontend

FROM grafana/grafana:${GRAFANA_VERSION}
ARG TARGETARCH
ENV GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=akamai-estats-datasource
COPY --from=frontend /src/dist/ /var/lib/grafana/plugins/akamai-estats-datasource/
COPY --from=backend --chmod=0755 /src/dist/gpx_akamai_estats_linux_${TARGETARCH} /var/lib/grafana/plugins/akamai-estats-datasource/
COPY provisioning/ /etc/grafana/provisioning/
# The history volume is mounted here; a named volume takes over this directory's owner (the
# grafana user) when it is first created, so the plugin can write its SQLite file.
RUN mkdir -p /var/lib/grafana/akamai-estats
