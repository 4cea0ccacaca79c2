"""Storage: the embedded DuckDB file (readings, interactions, rejects, ingest_runs)."""

from engine.storage.columns import Columns
from engine.storage.duckdb_store import FileStats, Store, default_db_path

__all__ = ["Columns", "FileStats", "Store", "default_db_path"]
