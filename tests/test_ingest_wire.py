"""The WebSocket client (ingest/wire.py) against a real websockets server on loopback: pings answered,
close codes and reasons both ways, resets, fragmented messages, refused upgrades."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection

from ingest import wire
from ingest.sim.server import Client, LoopbackServer


class EchoServer(LoopbackServer):
    """Echoes text frames; a path of /refused is answered 404 instead of upgrading."""

    async def on_message(self, client: Client, message: str | bytes) -> None:
        await self.send(client, message if isinstance(message, str) else message.decode())

    async def process_request(self, connection: ServerConnection, request) -> object:
        if request.path == "/refused":
            return connection.respond(404, "no such stream")
        return None


@pytest.fixture
async def server():
    s = await EchoServer().start()
    yield s
    await s.stop()


async def _connect(server: EchoServer) -> tuple[wire.WireConnection, Client]:
    ws = await wire.connect(server.url, 5)
    await server.wait_until(lambda: len(server.clients) == 1)
    return ws, next(iter(server.clients))


async def _all_messages(ws: wire.WireConnection) -> list[bytes]:
    got: list[bytes] = []
    async for chunk in ws.messages():
        got.extend(chunk)
    return got


async def test_messages_arrive_in_order_and_fragments_are_joined(server):
    ws, client = await _connect(server)
    for i in range(200):
        await client.ws.send(f'{{"n":{i}}}')
    await client.ws.send(["frag", "mented", " message"])  # an iterable is sent as one fragmented message
    await client.ws.close(1000, "done")
    got = await asyncio.wait_for(_all_messages(ws), 5)
    assert got == [f'{{"n":{i}}}'.encode() for i in range(200)] + [b"fragmented message"]


async def test_server_pings_are_answered(server):
    ws, client = await _connect(server)
    pong = await client.ws.ping(b"are you there")
    await asyncio.wait_for(pong, 5)  # resolves only when the client's pong comes back
    await ws.close()


async def test_a_close_from_the_venue_is_answered_and_its_code_and_reason_kept(server):
    ws, client = await _connect(server)
    await client.ws.close(1001, "server restart")
    await asyncio.wait_for(_all_messages(ws), 5)
    assert (ws.close_code, ws.close_reason) == (1001, "server restart")
    assert client.ws.close_code == 1001  # the client answered the closing handshake


async def test_our_close_reaches_the_venue_with_its_code(server):
    ws, client = await _connect(server)
    assert ws.close_code is None
    await ws.close(4000, "stale: no market data")
    assert (client.ws.protocol.close_rcvd.code, client.ws.protocol.close_rcvd.reason) == (4000, "stale: no market data")
    assert ws.close_code == 4000  # the venue's answer echoes it


async def test_a_reset_connection_ends_as_abnormal_closure(server):
    ws, client = await _connect(server)
    client.ws.transport.abort()
    await asyncio.wait_for(_all_messages(ws), 5)
    assert (ws.close_code, ws.close_reason) == (1006, "")


async def test_sent_text_reaches_the_venue(server):
    ws, _ = await _connect(server)
    await ws.send('{"method":"SUBSCRIBE"}')
    async for chunk in ws.messages():
        assert chunk == [b'{"method":"SUBSCRIBE"}']
        break
    await ws.close()


async def test_a_refused_upgrade_is_a_connection_error_naming_the_url(server):
    url = server.url.rstrip("/") + "/refused"
    with pytest.raises(ConnectionError, match="refused"):
        await wire.connect(url, 5)
