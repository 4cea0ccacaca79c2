"""Device codes (`engine.connectors.codes`): the decoder's numbering and the keyed steps' code -> slot maps
must never send a reading to another device's state, whatever the table, process or expiry."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.connectors import codes as codes_module
from engine.connectors.codes import CodeTable, SlotCache
from engine.connectors.decode import _VOUCHED, decode_batch
from engine.connectors.messages import MessageBatch, Readings
from engine.connectors.windows import ShardWindows
from engine.sim import Fleet, FleetConfig
from flows.iot import load_config
from models.anomaly import DetectorConfig, ShardDetectors


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(min_codepoint=33, max_codepoint=0x24F), min_size=1, max_size=40), min_size=1))
def test_every_id_keeps_its_code_and_name_as_the_table_grows(ids: list[str]) -> None:
    table = CodeTable()
    for i in range(0, len(ids), 3):  # several additions, repeats included
        table.add(ids[i : i + 3])
    known = list(dict.fromkeys(ids))
    assert sorted(table.codes.values()) == list(range(len(known)))
    codes = table.lookup(ids)
    assert [table.names[c] for c in codes.tolist()] == ids
    assert table.lookup(known[:1]).tolist() == [table.codes[known[0]]]


def test_an_unknown_id_has_no_code() -> None:
    table = CodeTable()
    table.add([f"dev-{i:05d}" for i in range(3000)])  # past the first growth of the names
    assert table.names[table.lookup(["dev-02999"])[0]] == "dev-02999"
    with pytest.raises(KeyError):
        table.lookup(["dev-00001", "dev-99999"])


def test_a_slot_cache_answers_only_for_its_table_and_forgets_expired_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codes_module, "_ISSUED", {7, 8})  # two tables of this process
    cache = SlotCache()
    codes = np.array([0, 1, 2])
    assert cache.slots(codes, 7) is None  # nothing learnt yet
    cache.learn(codes, 7, np.array([5, 6, 7]))
    assert cache.slots(codes, 7).tolist() == [5, 6, 7]
    assert cache.slots(codes, 8) is None  # another table's codes (a new table, another process)
    assert cache.slots(np.array([3]), 7) is None  # a code it never saw
    cache.forget([6])
    assert cache.slots(np.array([0, 2]), 7).tolist() == [5, 7]
    assert cache.slots(np.array([1]), 7) is None
    cache.learn(np.array([9]), 8, np.array([6]))  # a new table: everything before is forgotten
    assert cache.slots(codes, 7) is None and cache.slots(np.array([9]), 8).tolist() == [6]
    cache.learn(np.array([0]), 12345, np.array([1]))  # another process's codes: ignored, the cache kept
    assert cache.token == 8 and cache.slots(np.array([9]), 8).tolist() == [6]


def _fleet_batches(devices: int, ticks: int, seed: int, prefix: bytes = b"dev-", at: float = 0.0) -> list[Readings]:
    fleet = Fleet(FleetConfig(devices=devices, rate_hz=1.0, seed=seed, anomaly_rate=0.01, bad_rate=0.05))
    msgs = [(m.topic, m.payload.replace(b"dev-", prefix)) for m in fleet.run(1_714_557_600.0 + at, ticks)]
    return [decode_batch(MessageBatch("t", msgs[i : i + 300], 0.0))[0] for i in range(0, len(msgs), 300)]


def test_decoded_codes_name_the_readings_own_devices() -> None:
    batches = _fleet_batches(200, 20, 3)
    table = _VOUCHED.table
    assert all(b.codes is not None and b.code_token == table.token for b in batches)
    for b in batches:
        assert table.names[b.codes].tolist() == b.device_id.tolist()


def test_windows_and_detectors_agree_with_and_without_codes_through_expiry_and_pickling() -> None:
    """The same batches through states that see codes and states that never do give the same output, with
    devices expiring and slots reused in between, and codes from another process (pickled) ignored."""
    cfg = load_config(None, windows={"length_s": 60.0, "allowed_lateness_s": 5.0, "device_ttl_s": 30.0})
    # Fleets with silences between them: each silence expires the devices before it; the third fleet takes
    # the slots the first two freed, and then the first fleet comes back while the third is still there.
    fleets = [(60, 4, b"dev-", 0.0), (80, 5, b"eqp-", 1000.0), (50, 6, b"rst-", 2000.0), (60, 7, b"dev-", 2010.0)]
    batches, offsets = [], []
    for devices, seed, prefix, at in fleets:
        part = _fleet_batches(devices, 20, seed, prefix, at)
        batches += part
        offsets += [at] * len(part)
    with_codes, without = ShardWindows(cfg.windows), ShardWindows(cfg.windows)
    det_codes, det_plain = ShardDetectors(DetectorConfig()), ShardDetectors(DetectorConfig())
    for k, b in enumerate(batches):
        now = 1_714_557_600.0 + 4 * k + offsets[k]
        plain = Readings(b.device_id, b.ts_us, b.values, b.received_at)
        if k in (1, len(batches) - 1):  # as if from another process: a token this process never issued
            b = pickle.loads(pickle.dumps(b))
            b = Readings(b.device_id, b.ts_us, b.values, b.received_at, b.codes, b.code_token ^ 2)
        a1, late1, d1, c1 = with_codes.add(b, now)
        a2, late2, d2, c2 = without.add(plain, now)
        assert (a1.device_id.tolist(), late1, d1) == (a2.device_id.tolist(), late2, d2)
        assert [(w.device_id, w.window_start, w.count) for w in c1] == [
            (w.device_id, w.window_start, w.count) for w in c2
        ]
        assert det_codes.process(a1) == det_plain.process(a2)
        if k % 3 == 0:
            closed1, closed2 = with_codes.close_due(now), without.close_due(now)
            assert [(w.device_id, w.count) for w in closed1] == [(w.device_id, w.count) for w in closed2]
            before = float(b.ts_us.max()) / 1e6 - 30.0  # event time: the detectors forget the silent fleets
            assert det_codes.expire(before) == det_plain.expire(before)
    assert det_codes.devices.keys() == det_plain.devices.keys()
    assert {d[:4] for d in det_codes.devices} == {"rst-", "dev-"}
    last1, last2 = with_codes.close_all(now), without.close_all(now)
    assert [(w.device_id, w.window_start, w.count, w.stats) for w in last1] == [
        (w.device_id, w.window_start, w.count, w.stats) for w in last2
    ]
    assert with_codes.devices.keys() == without.devices.keys()
    assert with_codes._by_code.token == _VOUCHED.table.token and (with_codes._by_code.slot_of >= 0).sum() >= 50
    assert {d[:4] for d in with_codes.devices} == {"rst-", "dev-"}  # the second fleet expired
    assert max(with_codes.devices.values()) < 140 + 50  # slots were reused
