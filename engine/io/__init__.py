"""File formats and readers."""

from engine.io.formats import Detected, Format, detect
from engine.io.readers import DEFAULT_BATCH_ROWS, FileReader, ParseError, RawBatch, read_all

__all__ = ["DEFAULT_BATCH_ROWS", "Detected", "FileReader", "Format", "ParseError", "RawBatch", "detect", "read_all"]
