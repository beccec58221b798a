# Shipway's own image (server and runner), on the Debian base Shipway builds locally
# with debootstrap (`shipway images debian`): no registry is needed.
FROM shipway/debian:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Extra CAs (see docker/certs/README.md), for pip behind a TLS-intercepting proxy.
COPY docker/certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/shipway
ENV PATH=/opt/shipway/bin:$PATH

# Dependencies first, in a layer of their own: a code change does not reinstall them.
WORKDIR /src
COPY pyproject.toml README.md ./
RUN mkdir -p pipelines server runners confd \
 && touch pipelines/__init__.py server/__init__.py runners/__init__.py confd/__init__.py \
 && pip install --no-cache-dir . \
 && pip uninstall -y shipway

COPY pipelines pipelines
COPY server server
COPY runners runners
COPY confd confd
RUN pip install --no-cache-dir --no-deps . && rm -rf /src
WORKDIR /
ENTRYPOINT ["shipway"]
