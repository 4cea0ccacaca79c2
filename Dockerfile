# First version: the ingest side and its CLI. The serving image will install '.[serve]' only.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY models ./models
COPY flows ./flows
RUN pip install '.[ingest]' && useradd --create-home tidegate
USER tidegate
WORKDIR /data
ENV TIDEGATE_DB=/data/tidegate.duckdb
ENTRYPOINT ["tidegate"]
CMD ["--help"]
