"""A loopback OKX v5 public stream: subscribe answered once per channel argument, unknown channels
answered with an error event, the text "ping" answered with "pong", the 30 s idle rule (a connection
with no traffic from the client is closed), and REST GET /api/v5/public/instruments on the same port.

The `books` channel as OKX runs it: a subscription is answered with a snapshot of the server's book (the
best 400 levels a side, prevSeqId -1), then every change is an update whose prevSeqId is the previous
message's seqId, each carrying the CRC32 checksum of the book after it, computed here from the server's
own book. Tests can drop updates (the book and seqId move on unseen) or corrupt checksums."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from ingest.sim.server import Client, LoopbackServer

CHANNELS = (
    "trades",
    "bbo-tbt",
    "books",
    "mark-price",
    "index-tickers",
    "funding-rate",
    "open-interest",
    "liquidation-orders",
)
BOOK_DEPTH = 400  # levels a side in a books snapshot
SEQ_STEP = 3  # OKX's seqIds are increasing, not contiguous
CONTRACT_VALUES = {"BTC-USDT-SWAP": "0.01", "ETH-USDT-SWAP": "0.1", "SOL-USDT-SWAP": "1"}


def sub_key(arg: dict) -> str:
    return f"{arg.get('channel')}:{arg.get('instId') or arg.get('instType')}"


def push(channel: str, inst: str, data: list[dict]) -> dict:
    key = "instType" if channel == "liquidation-orders" else "instId"
    return {"arg": {"channel": channel, key: inst}, "data": data}


def trade(inst: str, trade_id: str, px: str, sz: str, side: str, ts: int) -> dict:
    return push(
        "trades",
        inst,
        [{"instId": inst, "tradeId": trade_id, "px": px, "sz": sz, "side": side, "ts": str(ts), "count": "1"}],
    )


def bbo(inst: str, bid: tuple[str, str], ask: tuple[str, str], ts: int, seq: int) -> dict:
    return push(
        "bbo-tbt",
        inst,
        [{"asks": [[ask[0], ask[1], "0", "3"]], "bids": [[bid[0], bid[1], "0", "2"]], "ts": str(ts), "seqId": seq}],
    )


def mark_price(inst: str, px: str, ts: int) -> dict:
    return push("mark-price", inst, [{"instType": "SWAP", "instId": inst, "markPx": px, "ts": str(ts)}])


def index_ticker(index: str, px: str, ts: int) -> dict:
    return push(
        "index-tickers",
        index,
        [
            {
                "instId": index,
                "idxPx": px,
                "open24h": px,
                "high24h": px,
                "low24h": px,
                "sodUtc0": px,
                "sodUtc8": px,
                "ts": str(ts),
            }
        ],
    )


def funding_rate(inst: str, rate: str, funding_ms: int, next_ms: int, ts: int) -> dict:
    return push(
        "funding-rate",
        inst,
        [
            {
                "instType": "SWAP",
                "instId": inst,
                "fundingRate": rate,
                "fundingTime": str(funding_ms),
                "nextFundingTime": str(next_ms),
                "method": "current_period",
                "settState": "settled",
                "ts": str(ts),
            }
        ],
    )


def open_interest(inst: str, contracts: str, ts: int) -> dict:
    return push(
        "open-interest",
        inst,
        [{"instType": "SWAP", "instId": inst, "oi": contracts, "oiCcy": "", "oiUsd": "", "ts": str(ts)}],
    )


def liquidation(inst: str, side: str, px: str, contracts: str, ts: int) -> dict:
    pos_side = "long" if side == "sell" else "short"
    return push(
        "liquidation-orders",
        "SWAP",
        [
            {
                "instId": inst,
                "instType": "SWAP",
                "uly": inst[:-5],
                "instFamily": inst[:-5],
                "details": [
                    {
                        "side": side,
                        "posSide": pos_side,
                        "bkPx": px,
                        "sz": contracts,
                        "bkLoss": "0",
                        "ccy": "",
                        "ts": str(ts),
                    }
                ],
            }
        ],
    )


Quote = tuple[str, str]  # price, size in contracts: the wire strings


@dataclass
class SimBook:
    """The server's book of one instrument: price string -> size string per side, and the last seqId sent."""

    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    ts: int = 0
    seq: int = 1000

    def best(self, side: str, n: int) -> list[Quote]:
        levels = self.bids if side == "bids" else self.asks
        ordered = sorted(levels.items(), key=lambda kv: float(kv[0]), reverse=side == "bids")
        return ordered[:n]

    def change(self, side: str, levels: list[Quote]) -> None:
        held = self.bids if side == "bids" else self.asks
        for px, sz in levels:
            if float(sz) == 0:
                held.pop(px, None)
            else:
                held[px] = sz

    def checksum(self) -> int:
        """OKX's CRC32: best 25 bids and asks as price:size, alternating, the longer side's rest after."""
        bids, asks = self.best("bids", 25), self.best("asks", 25)
        parts: list[str] = []
        for i in range(max(len(bids), len(asks))):
            parts += [f"{px}:{sz}" for px, sz in (bids[i : i + 1] + asks[i : i + 1])]
        crc = zlib.crc32(":".join(parts).encode())
        return crc - (1 << 32) if crc & (1 << 31) else crc


def book_levels(levels: list[Quote]) -> list[list[str]]:
    return [[px, sz, "0", "0" if float(sz) == 0 else "1"] for px, sz in levels]


def books_push(inst: str, action: str, bids: list[Quote], asks: list[Quote], book: SimBook, prev: int) -> dict:
    item = {
        "asks": book_levels(asks),
        "bids": book_levels(bids),
        "ts": str(book.ts),
        "checksum": book.checksum(),
        "prevSeqId": prev,
        "seqId": book.seq,
    }
    return {"arg": {"channel": "books", "instId": inst}, "action": action, "data": [item]}


class OkxServer(LoopbackServer):
    path = "/ws/v5/public"

    def __init__(self, idle_timeout_s: float | None = 30.0) -> None:
        super().__init__(idle_timeout_s)
        self.contract_values = dict(CONTRACT_VALUES)
        self.states: dict[str, str] = {}  # instId -> state when not "live" (suspend, preopen...)
        self.tick_sizes: dict[str, str] = {"BTC-USDT-SWAP": "0.1", "ETH-USDT-SWAP": "0.01", "SOL-USDT-SWAP": "0.001"}
        self.instrument_requests = 0
        self.rest_down = False
        self.history: dict[str, list[dict]] = {}  # instId -> trade items as `trade()` pushes them, any order
        self.history_requests: list[str] = []
        self.books: dict[str, SimBook] = {}  # instId -> the book the books channel serves
        self.drop_updates = 0  # books updates to leave unsent (the book and seqId still move on)
        self.corrupt_checksums = 0  # books messages (snapshots included) to send with a wrong checksum
        self.snapshots_sent = 0

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        url = urlsplit(request.path)
        self.instrument_requests += 1
        if self.rest_down:
            return connection.respond(503, "Service Unavailable")
        if url.path == "/api/v5/market/history-trades":
            return self._history(connection, request.path, {k: v[0] for k, v in parse_qs(url.query).items()})
        if url.path != "/api/v5/public/instruments" or parse_qs(url.query).get("instType") != ["SWAP"]:
            return connection.respond(404, '{"code":"51000","msg":"Parameter error","data":[]}')
        data = [
            {
                "instId": inst,
                "instType": "SWAP",
                "ctVal": ct,
                "ctValCcy": inst.split("-")[0],
                "ctType": "linear",
                "settleCcy": "USDT",
                "uly": inst.removesuffix("-SWAP"),
                "tickSz": self.tick_sizes.get(inst, "0.0001"),
                "lotSz": "1",
                "state": self.states.get(inst, "live"),
            }
            for inst, ct in self.contract_values.items()
        ]
        response = connection.respond(200, orjson.dumps({"code": "0", "msg": "", "data": data}).decode())
        response.headers["Content-Type"] = "application/json"
        return response

    def _history(self, connection: ServerConnection, path: str, query: dict[str, str]) -> Response:
        """type=1: paged by trade id; after=<id>: trades older than it, newest first, at most `limit` (100)."""
        self.history_requests.append(path)
        if query.get("type") != "1" or "after" not in query:
            return connection.respond(400, '{"code":"51000","msg":"Parameter type error","data":[]}')
        after, limit = int(query["after"]), min(int(query.get("limit", 100)), 100)
        older = [t for t in self.history.get(query.get("instId", ""), []) if int(t["tradeId"]) < after]
        data = sorted(older, key=lambda t: -int(t["tradeId"]))[:limit]
        data = [{k: t[k] for k in ("instId", "tradeId", "px", "sz", "side", "ts")} for t in data]
        response = connection.respond(200, orjson.dumps({"code": "0", "msg": "", "data": data}).decode())
        response.headers["Content-Type"] = "application/json"
        return response

    async def on_message(self, client: Client, message: str | bytes) -> None:
        if message == "ping":
            self.pings += 1
            await self.send(client, "pong")
            return
        try:
            req = orjson.loads(message)
            op, args = req["op"], req["args"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self._error(client, "60012", f"Invalid request: {str(message)[:100]}")
            return
        if op not in ("subscribe", "unsubscribe"):
            await self._error(client, "60012", f"Invalid request: {str(message)[:100]}")
            return
        for arg in args:
            if not isinstance(arg, dict) or arg.get("channel") not in CHANNELS:
                await self._error(client, "60018", f"Wrong URL or channel:{arg}, doesn't exist.")
                continue
            if op == "subscribe":
                client.subs.add(sub_key(arg))
            else:
                client.subs.discard(sub_key(arg))
            await self.send(
                client,
                orjson.dumps(
                    {"id": req.get("id", ""), "event": op, "arg": arg, "connId": f"{id(client):x}"[-8:]}
                ).decode(),
            )
            if op == "subscribe" and arg["channel"] == "books" and arg.get("instId") in self.books:
                await self._snapshot(client, arg["instId"])
        await self.changed()

    # -- books ---------------------------------------------------------------------------------------------

    def set_book(self, inst: str, bids: list[Quote], asks: list[Quote], ts: int, seq: int = 1000) -> None:
        """The book a books subscription of `inst` is answered with (no push to current subscribers)."""
        self.books[inst] = SimBook(dict(bids), dict(asks), ts, seq)

    async def _snapshot(self, client: Client, inst: str) -> None:
        book = self.books[inst]
        push = books_push(inst, "snapshot", book.best("bids", BOOK_DEPTH), book.best("asks", BOOK_DEPTH), book, -1)
        self.snapshots_sent += 1
        await self.send(client, orjson.dumps(self._maybe_corrupt(push)).decode())

    async def book_update(self, inst: str, bids: list[Quote], asks: list[Quote], ts: int) -> dict:
        """Applies the changed levels (size "0" deletes) and pushes them as one update; returns the message."""
        book = self.books[inst]
        book.change("bids", bids)
        book.change("asks", asks)
        prev = book.seq
        book.seq += SEQ_STEP
        book.ts = ts
        push = books_push(inst, "update", bids, asks, book, prev)
        if self.drop_updates:
            self.drop_updates -= 1
            return push
        await self.publish(self._maybe_corrupt(push))
        return push

    async def book_keepalive(self, inst: str, ts: int) -> None:
        """What OKX sends after ~60 s without a change: no levels, seqId = prevSeqId = the last seqId."""
        book = self.books[inst]
        book.ts = ts
        await self.publish(books_push(inst, "update", [], [], book, book.seq))

    async def book_to(self, inst: str, bids: list[Quote], asks: list[Quote], ts: int) -> None:
        """Moves the book to these levels: one update with what changed (levels gone sent with size "0")."""
        book = self.books.setdefault(inst, SimBook(ts=ts))
        changes = {}
        for side, target in (("bids", dict(bids)), ("asks", dict(asks))):
            held = book.bids if side == "bids" else book.asks
            changes[side] = [(px, "0") for px in held if px not in target] + [
                (px, sz) for px, sz in target.items() if held.get(px) != sz
            ]
        if changes["bids"] or changes["asks"]:
            await self.book_update(inst, changes["bids"], changes["asks"], ts)

    def _maybe_corrupt(self, push: dict) -> dict:
        if self.corrupt_checksums:
            self.corrupt_checksums -= 1
            item = push["data"][0]
            item["checksum"] = item["checksum"] + 1 if item["checksum"] < 2**31 - 1 else 0
        return push

    async def _error(self, client: Client, code: str, msg: str) -> None:
        await self.send(
            client,
            orjson.dumps({"event": "error", "code": code, "msg": msg, "connId": f"{id(client):x}"[-8:]}).decode(),
        )

    async def publish(self, payload: dict) -> int:
        return await self.publish_raw(sub_key(payload["arg"]), orjson.dumps(payload).decode())

    @property
    def rest_url(self) -> str:
        return self.url.replace("ws://", "http://").removesuffix(self.path)
