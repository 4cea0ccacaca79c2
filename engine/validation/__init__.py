"""Cleansing and validation against a declared schema: per record, or per batch (vectorised)."""

from engine.validation.record import Problem, check_text, validate_record
from engine.validation.rules import REASONS, clean_column_name, to_text

__all__ = ["REASONS", "Problem", "check_text", "clean_column_name", "to_text", "validate_record"]
