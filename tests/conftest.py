from __future__ import annotations

from pathlib import Path

import pytest

from engine.samples.messy_files import Corpus, write_messy_corpus


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    """The seeded messy corpus (every trap) and what ingesting it must give."""
    return write_messy_corpus(tmp_path / "incoming", rows=120, seed=11)
