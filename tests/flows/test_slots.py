"""`by_slot` is numpy's stable argsort, whichever sort it picks (radix for 16-bit slots, merge otherwise)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.connectors.slots import by_slot


@given(
    hnp.arrays(
        np.int64,
        st.integers(0, 3000),
        elements=st.one_of(st.integers(0, 40), st.integers(0, 70_000), st.integers(-3, 3)),
    )
)
def test_by_slot_is_the_stable_order_by_slot(slots: np.ndarray) -> None:
    assert by_slot(slots).tolist() == np.argsort(slots, kind="stable").tolist()
