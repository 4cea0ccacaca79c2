"""Device codes (`engine.connectors.codes`): the decoder gives each device id a code under a book; the keyed
steps find slots by code, and whatever they are fed (their own book, another process's, none, devices
forgotten and slots reused) they must do exactly what they do by name."""

from __future__ import annotations

import random

import numpy as np
import pytest

from engine.connectors.codes import CodeSlots, DeviceCodes, device_codes
from engine.connectors.decode import decode_batch
from engine.connectors.messages import MessageBatch, Readings
from engine.connectors.windows import ShardWindows, WindowConfig
from flows.iot import Sharder
from models.anomaly import DetectorConfig, ShardDetectors

T0 = 1_714_557_600.0


def test_a_code_slot_map_answers_only_for_codes_it_learned() -> None:
    m = CodeSlots()
    book = (7, 0)
    codes = np.array([0, 3, 5])
    assert m.get(codes, None) is None and m.get(codes, book) is None
    m.learn(codes, book, np.array([10, 11, 12]))
    assert m.get(np.array([5, 0, 0]), book).tolist() == [12, 10, 10]
    assert m.get(np.array([1]), book) is None  # a code between learned ones
    assert m.get(np.array([5, 10_000]), book) is None  # a code past the table
    assert m.get(codes, (7, 1)) is None  # the same id, another generation
    m.forget()
    assert m.get(codes, book) is None


def test_a_codebook_starts_a_new_generation_between_batches_only() -> None:
    codes = DeviceCodes(limit=4)
    codes.start_batch(3)
    first = codes.book
    assert [codes.code(d) for d in ("a", "b", "c", "a")] == [0, 1, 2, 0]
    assert codes.known(["c", "a"]).tolist() == [2, 0]
    with pytest.raises(KeyError):
        codes.known(["a", "z"])
    codes.start_batch(1)
    assert codes.book == first  # 3 + 1 is within the limit
    codes.start_batch(2)
    assert codes.book != first and codes.code("d") == 0  # past it: a new book, codes from 0


def test_decoded_readings_carry_one_code_per_device_under_the_decoders_book() -> None:
    ids = ["dev-1", "dev-2", "dev-1", "dev-3", "dev-2"]
    payloads = [f'{{"device_id":"{d}","ts":"2024-05-01T10:00:0{i}Z","temperature_c":20.5}}' for i, d in enumerate(ids)]
    payloads.append('{"device_id":"  dev-2 ","ts":"2024-05-01T10:00:09Z","temperature_c":1}')  # cleansed: dev-2
    readings, dead = decode_batch(MessageBatch("t", [("s", p.encode()) for p in payloads], 0.0))
    assert dead == [] and readings.book == device_codes().book
    pairs = set(zip(readings.device_id.tolist(), readings.codes.tolist(), strict=True))
    assert len(pairs) == len({d for d, _ in pairs}) == len({c for _, c in pairs}) == 3
    again, _ = decode_batch(MessageBatch("t", [("s", payloads[3].encode())], 0.0))
    assert (again.device_id[0], int(again.codes[0])) in pairs


def _batches(seed: int) -> list[tuple[list[str], list[float], list[float]]]:
    """Rows (device, event time, temperature) per batch: devices come and go, so slots are freed and reused."""
    rng = random.Random(seed)
    out = []
    t = T0
    for k in range(60):
        group = range(0, 12) if (k // 15) % 2 == 0 else range(8, 20)  # a third of the fleet goes silent
        ids, ts, temp = [], [], []
        for _ in range(2):
            for i in rng.sample(list(group), len(group)):
                t += 0.05
                ids.append(f"d{i}")
                ts.append(t)
                temp.append(round(rng.gauss(20, 2), 2) if rng.random() > 0.01 else 90.0)
        out.append((ids, ts, temp))
        t += 20.0 if k % 15 == 14 else 1.0
    return out


def _readings(ids: list[str], ts: list[float], temp: list[float], codes: np.ndarray | None, book: object) -> Readings:
    values = np.full((len(ids), 4), np.nan)
    values[:, 0] = temp
    column = np.empty(len(ids), dtype=object)
    column[:] = ids
    return Readings(column, (np.array(ts) * 1e6).astype(np.int64), values, 0.0, codes, book)


@pytest.mark.parametrize("seed", range(3))
def test_the_keyed_steps_by_code_do_what_they_do_by_name(seed: int) -> None:
    rng = random.Random(seed)
    wcfg = WindowConfig(length_s=10, allowed_lateness_s=2, tick_s=0.1, device_ttl_s=5)
    dcfg = DetectorConfig(warmup=3, device_ttl_s=10)
    by_code = (ShardWindows(wcfg), ShardDetectors(dcfg))
    by_name = (ShardWindows(wcfg), ShardDetectors(dcfg))
    books: dict[tuple[int, int], dict[str, int]] = {(1, 0): {}, (2, 0): {}, (2, 1): {}}
    now = 1000.0
    for ids, ts, temp in _batches(seed):
        book = rng.choice([*books, None])  # one process's book, another's, a new generation, none
        codes = None
        if book is not None:
            table = books[book]
            codes = np.array([table.setdefault(d, len(table)) for d in ids])
        now += 1.0
        outs = []
        for (win, det), c in ((by_code, codes), (by_name, None)):
            acc, late, dups, closed = win.add(_readings(ids, ts, temp, c, book if c is not None else None), now)
            found = det.process(acc)
            due = win.close_due(now)
            det.expire(ts[-1] - dcfg.device_ttl_s)
            outs.append((acc.rows, late, dups, list(closed), found, list(due), dict(win.devices), dict(det.devices)))
        assert outs[0] == outs[1]
    assert by_code[0]._free and by_code[1]._free  # slots were freed on the way (and so reused)


def test_the_sharder_by_code_splits_as_by_name() -> None:
    by_code, by_name = Sharder(3), Sharder(3)
    table: dict[str, int] = {}
    for ids, ts, temp in _batches(5)[:20]:
        codes = np.array([table.setdefault(d, len(table)) for d in ids])
        got = by_code((_readings(ids, ts, temp, codes, (9, 0)), [], 0.0))
        want = by_name((_readings(ids, ts, temp, None, None), [], 0.0))
        assert [(k, r.device_id.tolist(), r.ts_us.tolist()) for k, r in got] == [
            (k, r.device_id.tolist(), r.ts_us.tolist()) for k, r in want
        ]
        assert all(r.codes is not None for _, r in got)


def _rows(ids: list[str]) -> np.ndarray:
    width = len(ids[0].encode())
    return np.frombuffer(b"".join(d.encode() for d in ids), dtype=np.uint8).reshape(len(ids), width)


@pytest.mark.parametrize("width", [1, 8, 9, 36])
def test_ids_as_bytes_get_their_codes_or_none_never_another_devices(width: int) -> None:
    book = DeviceCodes()
    names = [f"{i:0{width}d}"[-width:] if width < 4 else f"{i:x}".rjust(width, "d") for i in range(10)]
    assert len({len(n) for n in names}) == 1 and len(set(names)) == 10
    want = [book.code(n) for n in names[:8]]
    assert book.by_bytes(_rows(names[:8])) is not None  # built on first use
    assert book.by_bytes(_rows(names[7::-1])).tolist() == want[::-1]
    assert book.by_bytes(_rows([names[0], names[9]])) is None  # one unknown: look the batch up by name
    assert book.names(np.array(want)).tolist() == names[:8]
    book.code(names[9])
    got = [book.by_bytes(_rows([names[9], names[1]])) for _ in range(10)]
    assert all(g is None or g.tolist() == [8, 1] for g in got) and got[-1] is not None  # rebuilt in time


def test_ids_whose_keys_collide_are_told_apart_by_their_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.connectors.codes as codes_module

    monkeypatch.setattr(codes_module, "_keys", lambda rows: rows[:, 0].astype(np.uint64))  # all collide
    book = DeviceCodes()
    a, b, c = "sensor-0001", "sensor-0002", "sensor-0003"
    book.code(a), book.code(b)
    for ids in ([a], [b], [a, b], [c], [a, c]):
        got = book.by_bytes(_rows(ids))
        assert got is None or got.tolist() == [book.codes[d] for d in ids]
    assert book.by_bytes(_rows([c])) is None


def test_a_batch_of_known_devices_decodes_to_the_same_codes_and_names() -> None:
    ids = [f"gateway-7.{i:04d}" for i in range(50)]
    msgs = [("s", f'{{"device_id":"{d}","ts":"2024-05-01T10:00:01Z","temperature_c":20.5}}'.encode()) for d in ids]
    first, _ = decode_batch(MessageBatch("t", msgs, 0.0))
    for _ in range(3):  # the first batches build the byte table; then the ids take it
        again, _ = decode_batch(MessageBatch("t", msgs[::-1], 0.0))
    assert again.device_id.tolist() == ids[::-1] and again.codes.tolist() == first.codes.tolist()[::-1]
    assert again.book == first.book
    assert all(x is y for x, y in zip(again.device_id, first.device_id[::-1], strict=True))  # the table's names


def test_a_new_byte_length_gets_its_table_at_once_in_a_large_book() -> None:
    book = DeviceCodes()
    for i in range(1000):
        book.code(f"dev-{i:04d}")
    assert book.by_bytes(_rows(["dev-0001"])) is not None
    ids = [f"x{i}" for i in range(10, 20)]
    assert book.by_bytes(_rows(ids)) is None
    for d in ids:
        book.code(d)
    assert book.by_bytes(_rows(ids)).tolist() == list(range(1000, 1010))
