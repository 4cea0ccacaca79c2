"""`engine.serve.wire`: what one event-loop step writes leaves as one write, in order, and nothing is held past
the step; and uvicorn on `OneWriteProtocol` serves real HTTP (keep-alive, a streamed response, Connection:
close) over a real socket."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvicorn

from engine.serve.wire import GatheredWrites, OneWriteProtocol


class _Counted(asyncio.Protocol):
    """The receiving end: every byte, in order."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.eof.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof.set()


async def _gathered() -> tuple[GatheredWrites, _Counted, list[bytes]]:
    """`GatheredWrites` on a real transport over a socket pair, the receiving end, and each write the transport
    was asked for."""
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
    _, peer = await loop.create_connection(_Counted, sock=b)
    sent: list[bytes] = []
    write = transport.write

    def recording(data: Any) -> None:
        sent.append(bytes(data))
        write(data)

    transport.write = recording  # type: ignore[method-assign]
    return GatheredWrites(transport, loop), peer, sent  # type: ignore[arg-type]


def _run(scenario: Callable[[GatheredWrites, _Counted, list[bytes]], Awaitable[None]]) -> None:
    async def main() -> None:
        w, peer, sent = await _gathered()
        try:
            await scenario(w, peer, sent)
        finally:
            w.close()

    asyncio.run(main())


async def _settle(peer: _Counted, size: int) -> None:
    for _ in range(200):
        if len(peer.data) >= size:
            return
        await asyncio.sleep(0.005)


def test_one_step_of_writes_is_one_write_in_order() -> None:
    async def scenario(w: GatheredWrites, peer: _Counted, sent: list[bytes]) -> None:
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        w.write(b"hello")
        assert sent == []  # nothing leaves inside the step
        await asyncio.sleep(0)  # the step ends
        assert sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"]
        await _settle(peer, len(sent[0]))
        assert bytes(peer.data) == sent[0]

    _run(scenario)


def test_writes_of_separate_steps_each_leave_with_their_step() -> None:
    async def scenario(w: GatheredWrites, peer: _Counted, sent: list[bytes]) -> None:
        w.write(b"event: a\n\n")
        await asyncio.sleep(0)
        await _settle(peer, 10)
        assert bytes(peer.data) == b"event: a\n\n"  # the first step's bytes arrived before the second was written
        w.write(b"event: b\n\n")
        await asyncio.sleep(0)
        assert sent == [b"event: a\n\n", b"event: b\n\n"]

    _run(scenario)


def test_a_reused_buffer_and_close_lose_nothing() -> None:
    async def scenario(w: GatheredWrites, peer: _Counted, sent: list[bytes]) -> None:
        buf = bytearray(b"first")
        w.write(buf)
        buf[:] = b"XXXXX"  # the caller reuses its buffer before the step ends
        w.writelines([b"-", memoryview(b"second")])
        assert w.get_write_buffer_size() == len(b"first-second")
        w.close()  # closing flushes first
        assert sent == [b"first-second"]
        await asyncio.wait_for(peer.eof.wait(), 5)
        assert bytes(peer.data) == b"first-second"
        await asyncio.sleep(0)  # the flush scheduled by the first write finds nothing left
        assert sent == [b"first-second"]

    _run(scenario)


def test_abort_drops_what_is_pending() -> None:
    async def scenario(w: GatheredWrites, _peer: _Counted, sent: list[bytes]) -> None:
        w.write(b"never")
        w.abort()
        await asyncio.sleep(0)
        assert sent == []
        assert w.is_closing()  # everything else is the wrapped transport's

    _run(scenario)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    if scope["path"] == "/stream":  # headers, then two chunks in later steps
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one ", b"two"):
            await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = scope["path"].encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, http=OneWriteProtocol, log_level="error", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(500):
        if srv.started:
            break
        threading.Event().wait(0.01)
    assert srv.started
    yield port
    srv.should_exit = True
    thread.join(10)


def _exchange(port: int, request: bytes, until: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(request)
        got = b""
        while not got.endswith(until):
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_uvicorn_on_the_protocol_serves_keep_alive_requests_in_order(server: int) -> None:
    two = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /bb HTTP/1.1\r\nhost: x\r\n\r\n"  # pipelined, one connection
    got = _exchange(server, two, b"/bb")
    assert got.count(b"HTTP/1.1 200 OK") == 2
    assert got.index(b"\r\n\r\n/a") < got.index(b"\r\n\r\n/bb")


def test_uvicorn_on_the_protocol_streams_and_closes(server: int) -> None:
    got = _exchange(server, b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n", b"0\r\n\r\n")
    assert b"transfer-encoding: chunked" in got
    assert got.endswith(b"4\r\none \r\n3\r\ntwo\r\n0\r\n\r\n")
    closed = _exchange(server, b"GET /c HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", b"never")
    assert closed.startswith(b"HTTP/1.1 200 OK") and closed.endswith(b"\r\n\r\n/c")  # all of it, then EOF
