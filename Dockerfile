# Crossroads in a container. The install is scripts/install.sh, the same script the
# README's run command (scripts/serve.sh) and CI (scripts/test.sh) use, so the image
# cannot install differently from what is tested. (Docker does not run on the
# project's CI machines; this file is kept to those shared steps for that reason.)
FROM python:3.12-slim

WORKDIR /opt/crossroads
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
COPY scripts ./scripts
COPY config.example.yaml ./
# the package into /opt/crossroads/.venv, and `crossroads` linked into /usr/local/bin
RUN CROSSROADS_BIN_DIR=/usr/local/bin bash scripts/install.sh \
    && useradd --system --home-dir /data --create-home crossroads \
    && mkdir -p /etc/crossroads && chown crossroads /etc/crossroads

USER crossroads
ENV HOME=/data \
    CROSSROADS_CALLBACK_HOST=0.0.0.0
# /etc/crossroads: config.yaml (a plain management secret is replaced by its hash, so writable)
# /data: auth-dir (~/.crossroads: stored logins, usage database, logs)
VOLUME ["/etc/crossroads", "/data"]
# 8317: the API. The rest: OAuth login redirects (`crossroads login ...` run in the container):
# Claude 54545, Codex 1455, Gemini CLI 8085, Antigravity 51121, iFlow 11451
EXPOSE 8317 54545 1455 8085 51121 11451
ENTRYPOINT ["crossroads"]
CMD ["serve", "--config", "/etc/crossroads/config.yaml", "--host", "0.0.0.0"]
