# The tower's one image: every service runs a `tower` subcommand.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TOWER_INGEST_SPILL_DIR=/var/lib/tower/spill
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tower ./tower
COPY ingest ./ingest
COPY jobs ./jobs
COPY metabase ./metabase
COPY db ./db
# Editable install: the migration runner reads db/ next to the code.
RUN pip install --no-cache-dir -e . \
    && useradd --system --home /var/lib/tower tower \
    && mkdir -p /var/lib/tower && chown tower /var/lib/tower
USER tower
ENTRYPOINT ["tower"]
CMD ["--help"]
