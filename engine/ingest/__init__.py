"""File ingestion as plain functions (the Bytewax files flow wires them): read -> check -> store."""

from engine.ingest.check import Checked, check_batch, map_columns
from engine.ingest.files import FileChunk, FileEnd, discover, read_file, sha256_file
from engine.ingest.ledger import Ledger

__all__ = [
    "Checked",
    "FileChunk",
    "FileEnd",
    "Ledger",
    "check_batch",
    "discover",
    "map_columns",
    "read_file",
    "sha256_file",
]
