# algo-errors bot: `docker build -t algo-errors-bot .`, then run with the settings of
# `.env.example` (e.g. `--env-file .env`) and a volume on /data to keep the SQLite database:
#   docker run --env-file bot.env -v algo-errors-data:/data -p 3000:3000 algo-errors-bot
# It listens on $PORT (default 3000), so a platform that sets PORT (Cloud Run, Heroku, …) works.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot/ ./bot/
RUN pip install --no-cache-dir . \
    && rm -rf /src

# A numeric user, so Kubernetes can check `runAsNonRoot` (manifests/kubernetes runs it as 10001).
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin bot \
    && mkdir /data \
    && chown 10001:10001 /data

# The embedded store lives on the writable volume; set DATABASE_URL to use PostgreSQL instead.
ENV DATABASE_URL=sqlite:////data/algo-errors.db \
    PORT=3000
WORKDIR /data
USER 10001

EXPOSE 3000
# /healthz answers 200 while the process serves; urlopen raises otherwise, so the check fails.
# The port comes from the environment, as for `serve` (a `docker run -e PORT=…` included).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"]

# SIGTERM: the bot finishes or abandons its work in flight and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["algo-errors-bot"]
# No --port: `serve` listens on $PORT.
CMD ["serve", "--host", "0.0.0.0"]
