"""uvicorn's httptools protocol, with the writes of one event-loop step sent as one.

uvicorn writes a response in two `transport.write` calls, the status line and headers, then the body. On
uvloop each is its own `send` system call and its own TCP segment, and on loopback the kernel does the
receiving side's work inside the sender's call: measured on one core (py-spy, GIL samples), the two
writes took ~45% of the server's Python time for /v1/predict. Here the protocol's transport gathers what is
written during one step of the event loop and sends it with one write right after (`loop.call_soon`: the
loop's next pass, whose poll does not block while a callback is ready). Nothing waits for a timer: an
event stream's headers still leave at once.

    uvicorn.run(app, http=OneWriteProtocol)   # what `tidegate serve` does
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GatheredWrites:
    """A transport that sends what is written during one event-loop step as one write; everything else is
    the wrapped transport's."""

    __slots__ = ("_loop", "_parts", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._parts:
            self._loop.call_soon(self.flush)
        self._parts.append(data if type(data) is bytes else bytes(data))  # a caller may reuse its buffer

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        parts = self._parts
        if not parts:
            return
        self._parts = []
        if not self._transport.is_closing():
            self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._parts))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()  # a response written just before (Connection: close) still goes out
        self._transport.close()

    def abort(self) -> None:
        self._parts = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` on a `GatheredWrites` transport: one write per response (see the module)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(GatheredWrites(transport, self.loop))  # type: ignore[arg-type]
