"""The MQTT decoder's fast path gives the same verdict as the shared per-record validator."""

from __future__ import annotations

import hashlib
import random

import msgspec
import pytest

from engine.connectors.decode import decode_batch, decode_reading
from engine.connectors.messages import DeadLetter, MessageBatch
from engine.schema import SENSOR_READING, SensorReading
from engine.sim import Fleet, FleetConfig
from engine.validation import Problem, validate_record
from tests.engine.test_record_fast_path import reference_validate

ODD = [
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z","temperature_c":21}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00+02:00","temperature_c":21.5}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00","temperature_c":21.5}',
    b'{"device_id":" d1 ","ts":"2024-05-01T10:00:00Z","temperature_c":21.5}',
    b'{"device":"d1","timestamp":1714557600,"temp":"21,5"}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z","temp":21.5,"humidity_pct":40}',
    b'{"device_id":"d1","ts":"1999-05-01T10:00:00Z","temperature_c":21.5}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z"}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z","temperature_c":true}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z","temperature_c":130}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z","temperature_c":null,"vibration_g":0.1}',
    b'{"device_id":"","ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00.1234567Z","temperature_c":1}',
    b"[1,2]",
    b"{",
    b'"text"',
    # the batch path's own checks: device ids, timestamp shapes, calendar, range
    b'{"device_id":"None","ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"na","ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"nan1","ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1\\n","ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d\\u00e91","ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d 1","ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"' + b"x" * 64 + b'","ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"' + b"x" * 65 + b'","ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":17,"ts":"2024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00.9Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00.12Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00.123456Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00.Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-02-29T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2023-02-29T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-04-31T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-13-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-00-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T24:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:60:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:60Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01t10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01 10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00+00:00","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"+024-05-01T10:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00.\\u00e9Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z\\u0000","temperature_c":1}',
    b'{"device_id":"d1","ts":"2030-01-01T00:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2029-12-31T23:59:59.999999Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"2000-01-01T00:00:00Z","temperature_c":1}',
    b'{"device_id":"d1","ts":"1999-12-31T23:59:59.999999Z","temperature_c":1}',
    b'{"device_id":"d1","ts":1714557600,"temperature_c":1}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z","temperature_c":1,"humidity_pct":null}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z","vibration_g":16}',
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z","vibration_g":16.0001}',
    b' {"ts":"2024-05-01T10:00:00Z","device_id":"a:b.c-d_e","vibration_g":1e-3} ',
]


def _full(payload: bytes) -> SensorReading | Problem | str:
    try:
        obj = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return "bad_json"
    return validate_record(SENSOR_READING, obj)


def _same(a: object, b: object) -> bool:
    if isinstance(a, Problem) or isinstance(b, Problem | str):
        reason = b if isinstance(b, str) else getattr(b, "reason", None)
        return isinstance(a, Problem) and a.reason == reason
    assert isinstance(a, SensorReading) and isinstance(b, SensorReading)
    return msgspec.structs.asdict(a) == msgspec.structs.asdict(b)


@pytest.mark.parametrize("payload", ODD)
def test_odd_payloads_get_the_validators_verdict(payload: bytes) -> None:
    assert _same(decode_reading(payload), _full(payload))


def test_simulated_traffic_matches_the_validator_and_every_message_is_accounted_for() -> None:
    fleet = Fleet(FleetConfig(devices=30, seed=5, anomaly_rate=0.01, bad_rate=0.1, late_rate=0.02))
    msgs = fleet.run(1_714_557_600.0, 50)
    for m in msgs:
        assert _same(decode_reading(m.payload), _full(m.payload)), m.payload
    readings, dead = decode_batch(MessageBatch("t", [(m.topic, m.payload) for m in msgs], 0.0))
    assert len(readings) + len(dead) == len(msgs)
    assert len(dead) == sum(v for k, v in fleet.counts.items() if k not in {"good", "spike", "stuck", "late"})
    assert {d.reason for d in dead} == {"bad_json", "out_of_range", "missing_field", "bad_type", "not_an_object"}
    assert all(d.position.startswith("sensors/dev-") and "#" in d.position for d in dead)


@pytest.mark.parametrize("mixed", [False, True])
def test_the_batch_path_gives_every_message_its_per_record_verdict_in_order(mixed: bool) -> None:
    """Column-wise checks over a batch (one timestamp shape; or mixed shapes and odd payloads interleaved)
    must keep each message's verdict and the arrival order."""
    fleet = Fleet(FleetConfig(devices=40, seed=9, anomaly_rate=0.01, bad_rate=0.05 if mixed else 0.0))
    msgs = [(m.topic, m.payload) for m in fleet.run(1_714_557_600.0, 30)]
    if mixed:
        for i, payload in enumerate(ODD):
            msgs.insert(i * 23 % len(msgs), ("sensors/odd", payload))
    readings, dead = decode_batch(MessageBatch("t", msgs, 0.0))
    want = [decode_reading(p) for _, p in msgs]
    assert [msgspec.structs.asdict(r) for r in readings.rows] == [
        msgspec.structs.asdict(w) for w in want if isinstance(w, SensorReading)
    ]
    assert [(d.reason, d.message) for d in dead] == [(w.reason, w.message) for w in want if isinstance(w, Problem)]
    assert len(dead) > 20 if mixed else not dead


def _payload(device: str, ts: str, temp: float = 21.5) -> bytes:
    return msgspec.json.encode({"device_id": device, "ts": ts, "temperature_c": temp, "humidity_pct": 40.0})


@pytest.mark.parametrize(
    "minute",
    ["2024-05-01T10:00", "2024-02-29T23:59", "2023-02-29T10:00", "2029-12-31T23:59", "1999-12-31T23:59"],
)
def test_a_batch_of_one_minute_gets_every_messages_verdict(minute: str) -> None:
    """Issue 3: timestamps that share their minute (the usual batch) are parsed as one minute plus seconds
    column-wise; the verdicts must be the per-record ones: a valid or invalid minute, the schema's bounds,
    seconds up to 59 only."""
    rng = random.Random(minute)
    seconds = [f"{s:02d}.{rng.randrange(1000):03d}" for s in (0, 1, 30, 59, 59, 60, 61, 75, 99)]
    msgs = [("t", _payload(f"dev-{i:04d}", f"{minute}:{s}Z")) for i, s in enumerate(seconds)]
    readings, dead = decode_batch(MessageBatch("t", msgs, 0.0))
    want = [decode_reading(p) for _, p in msgs]
    assert [msgspec.structs.asdict(r) for r in readings.rows] == [
        msgspec.structs.asdict(w) for w in want if isinstance(w, SensorReading)
    ]
    assert [(d.reason, d.message) for d in dead] == [(w.reason, w.message) for w in want if isinstance(w, Problem)]


def test_ids_of_other_lengths_and_refused_messages_keep_their_place() -> None:
    """Issue 3: a batch whose ids (or timestamps) differ in length cannot be read from one fixed MessagePack
    layout and takes the per-field lists; a refused message in between changes nothing for the others."""
    ids = ["a", "dev-7", "dev-0042", "sensor.000123", "a" * 64, "dev-0042"]
    msgs = [("t", _payload(d, f"2024-05-01T10:00:0{i}Z", 20 + i)) for i, d in enumerate(ids)]
    msgs.insert(3, ("t", b'{"device_id":"x","ts":"2024-05-01T10:00:00Z","temperature_c":900}'))
    msgs.append(("t", _payload("dev-9", "2024-05-01T10:00:09.5Z")))
    readings, dead = decode_batch(MessageBatch("t", msgs, 0.0))
    want = [decode_reading(p) for _, p in msgs]
    assert [msgspec.structs.asdict(r) for r in readings.rows] == [
        msgspec.structs.asdict(w) for w in want if isinstance(w, SensorReading)
    ]
    assert [d.reason for d in dead] == ["out_of_range"]


def _reference_dead_letter(source: str, topic: str, payload: bytes, received_at: float) -> DeadLetter | None:
    """The reject path as it was before issue 3's reject work: decode generically, the reference validator
    (tests/engine/test_record_fast_path.py), then the dead letter with its position and raw text."""
    try:
        obj = msgspec.json.decode(payload)
    except msgspec.DecodeError as exc:
        out: object = Problem("bad_json", f"not valid JSON: {exc}")
    else:
        out = reference_validate(SENSOR_READING, obj)
    if not isinstance(out, Problem):
        return None
    raw = payload[:4096].decode("utf-8", errors="replace")
    digest = hashlib.blake2b(payload, digest_size=8).hexdigest()
    return DeadLetter(source, f"{topic}#{digest}", raw, out.reason, out.message, received_at)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_many_bad_messages_get_the_reference_dead_letters_and_the_good_ones_their_readings(seed: int) -> None:
    """Issue 3 (a bad message costs less): with a third of the traffic malformed, the batch path gives every
    dead letter exactly as before (reason, message, position, raw) and every good message its reading."""
    fleet = Fleet(FleetConfig(devices=60, seed=seed, anomaly_rate=0.01, bad_rate=0.3, late_rate=0.02))
    msgs = [(m.topic, m.payload) for m in fleet.run(1_714_557_600.0, 20)]
    readings, dead = decode_batch(MessageBatch("src", msgs, 12.5))
    want_dead = [d for t, p in msgs if (d := _reference_dead_letter("src", t, p, 12.5)) is not None]
    assert dead == want_dead
    assert len(dead) > 300
    assert {d.reason for d in dead} == {"bad_json", "out_of_range", "missing_field", "bad_type", "not_an_object"}
    want = [decode_reading(p) for _, p in msgs]
    assert [msgspec.structs.asdict(r) for r in readings.rows] == [
        msgspec.structs.asdict(w) for w in want if isinstance(w, SensorReading)
    ]


BAD_UTF8 = [
    b'{"d\xe6vice_id":"d1","ts":"2024-05-01T10:00:00Z","temperature_c":1}',  # in a key
    b'{"device_id":"d\xff1","ts":"2024-05-01T10:00:00Z","temperature_c":1}',  # in a value
    b'{"device_id":"d1","ts":"2024-05-01T10:00:00\xc3Z","temperature_c":1}',  # a truncated sequence
]


def test_invalid_utf8_is_a_bad_json_dead_letter_not_a_crash() -> None:
    """msgspec raises UnicodeDecodeError (not DecodeError) for a string that is not UTF-8: one such message
    used to crash the whole batch, and the flow with it, on every restart (a poison message)."""
    good = b'{"device_id":"d1","ts":"2024-05-01T10:00:00Z","temperature_c":1}'
    for payload in BAD_UTF8:
        verdict = decode_reading(payload)
        assert isinstance(verdict, Problem) and verdict.reason == "bad_json" and "utf-8" in verdict.message
    messages = [("sensors/d1", good), *(("sensors/d1", p) for p in BAD_UTF8), ("sensors/d1", good)]
    readings, dead = decode_batch(MessageBatch("t", messages, 0.0))
    assert len(readings) == 2 and len(dead) == len(BAD_UTF8)
    assert [d.reason for d in dead] == ["bad_json"] * len(BAD_UTF8)
    assert all("\ufffd" in d.raw for d in dead)  # the raw text keeps the message, bad bytes replaced


def _with(payload: bytes, **extra: object) -> bytes:
    return payload[:-1] + b"," + msgspec.json.encode(extra)[1:]


def test_keys_the_validator_ignores_are_learned_and_skipped_by_the_batch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet whose payloads carry keys the schema does not know ("fw", "seq") must not put every payload
    through the validator: after one batch those keys are skipped by the batch decoder, with the same
    verdicts. Keys that name a field by alias or by a messy spelling are never learned."""
    import engine.connectors.decode as decode

    monkeypatch.setattr(decode, "_BATCH", decode._decoder(frozenset()))
    judged: list[bytes] = []
    verdict = decode._verdict
    monkeypatch.setattr(decode, "_verdict", lambda p: judged.append(p) or verdict(p))
    fleet = Fleet(FleetConfig(devices=30, seed=4, anomaly_rate=0.0, bad_rate=0.0))
    ticks = [[(m.topic, _with(m.payload, fw="1.2", seq=k)) for m in fleet.tick(1_714_557_600.0 + k)] for k in range(3)]
    for k in (1, 2):
        ticks[k] += [
            ("s", msgspec.json.encode({"device_id": "d1", "ts": "2024-05-01T10:00:00Z", "temp": 30.0})),  # alias
            ("s", _with(_payload("d2", "2024-05-01T10:00:00Z"), Vibration_G=0.5)),  # a messy spelling of a field
            ("s", _with(_payload("d3", "2024-05-01T10:00:00Z", temp=300.0), fw="1.2")),  # learned key, bad value
        ]
    for k, msgs in enumerate(ticks):
        want = [decode_reading(p) for _, p in msgs]
        judged.clear()
        readings, dead = decode_batch(MessageBatch("t", msgs, 0.0))
        assert [msgspec.structs.asdict(r) for r in readings.rows] == [
            msgspec.structs.asdict(w) for w in want if isinstance(w, SensorReading)
        ]
        assert [(d.reason, d.message) for d in dead] == [(w.reason, w.message) for w in want if isinstance(w, Problem)]
        assert len(judged) == (len(msgs) if k == 0 else 3)  # then only the alias, the messy key and the bad one
    assert decode._BATCH.extras == {"fw", "seq"}
    assert (readings.rows[-2].temperature_c, readings.rows[-1].vibration_g) == (30.0, 0.5)
    assert [d.reason for d in dead] == ["out_of_range"]


def test_keys_a_few_payloads_carry_are_left_to_the_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Learning costs every later batch the field-by-field columns: not worth it for a key in 1 payload of 40."""
    import engine.connectors.decode as decode

    monkeypatch.setattr(decode, "_BATCH", decode._decoder(frozenset()))
    fleet = Fleet(FleetConfig(devices=40, seed=4, anomaly_rate=0.0, bad_rate=0.0))
    msgs = [(m.topic, m.payload) for m in fleet.tick(1_714_557_600.0)]
    msgs[7] = (msgs[7][0], _with(msgs[7][1], fw="1.2"))
    readings, dead = decode_batch(MessageBatch("t", msgs, 0.0))
    assert (len(readings), dead, decode._BATCH.extras) == (40, [], frozenset())
    msgs[9] = (msgs[9][0], _with(msgs[9][1], fw="1.2"))  # 2 in 40: 5%, learned
    decode_batch(MessageBatch("t", msgs, 0.0))
    assert decode._BATCH.extras == {"fw"}
