"""A loopback Bybit v5 public linear stream: `op` subscribe/unsubscribe answered per request, the JSON
ping answered with a pong, unknown topics refused, and an optional idle rule (a connection that sends
nothing, not even a ping, for `idle_timeout_s` is closed); and REST on the same port: `GET
/v5/market/instruments-info?category=linear`, paginated by `cursor` / `nextPageCursor` like the venue,
and `GET /v5/market/recent-trade`: the last `recent_limit` of `history` (symbol -> publicTrade tuples),
newest first.

Depth books (`orderbook.50|200|1000.<symbol>`) follow the venue's protocol: a subscribe is answered with a
snapshot of the server's book (`set_book`), then `depth_update` sends the changes as one delta with the next
`u`; controls for tests: `drop_next_delta` (u advances, the delta is not sent), `send_crossed` (a delta whose
bid crosses the best ask) and `restart_depth` (numbering starts again: a snapshot with u = 1).
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from ingest.sim.server import Client, LoopbackServer

DEPTH_KINDS = ("orderbook.50", "orderbook.200", "orderbook.1000")
TOPIC_KINDS = ("publicTrade", "orderbook.1", "tickers", "allLiquidation", *DEPTH_KINDS)
Levels = dict[str, str]  # price -> size, both as the venue writes them


def depth_message(topic: str, kind: str, bids: list[list[str]], asks: list[list[str]], u: int, ts: int) -> dict:
    """One orderbook.N message in Bybit's form (`ts` the push time, `cts` the matching engine's)."""
    symbol = topic.rpartition(".")[2]
    data = {"s": symbol, "b": bids, "a": asks, "u": u, "seq": 1_000_000 + u * 7}
    return {"topic": topic, "type": kind, "ts": ts + 3, "data": data, "cts": ts}


class DepthState:
    """The server's own full book of one symbol, and its update id."""

    def __init__(self) -> None:
        self.bids: Levels = {}
        self.asks: Levels = {}
        self.u = 0
        self.ts = 0

    def top(self, levels: int) -> tuple[list[list[str]], list[list[str]]]:
        bids = sorted(self.bids.items(), key=lambda kv: -Decimal(kv[0]))[:levels]
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))[:levels]
        return [list(b) for b in bids], [list(a) for a in asks]

    def diff(self, bids: Levels, asks: Levels) -> tuple[list[list[str]], list[list[str]]]:
        """The delta entries that turn this book into (bids, asks), applied to it: changed sizes, "0" deletes."""
        out = []
        for mine, new in ((self.bids, bids), (self.asks, asks)):
            entries = [[p, "0"] for p in mine if p not in new] + [[p, q] for p, q in new.items() if mine.get(p) != q]
            mine.clear()
            mine.update(new)
            out.append(entries)
        return out[0], out[1]


def public_trade(symbol: str, trades: list[tuple[str, str, str, int, str]], ts: int) -> dict:
    """trades: (taker side "Buy"|"Sell", price, size, trade ms, trade id)."""
    return {
        "topic": f"publicTrade.{symbol}",
        "type": "snapshot",
        "ts": ts,
        "data": [
            {"T": t, "s": symbol, "S": side, "v": size, "p": px, "L": "PlusTick", "i": tid, "BT": False}
            for side, px, size, t, tid in trades
        ],
    }


def orderbook(
    symbol: str, kind: str, bid: tuple[str, str] | None, ask: tuple[str, str] | None, u: int, ts: int
) -> dict:
    return {
        "topic": f"orderbook.1.{symbol}",
        "type": kind,
        "ts": ts + 2,
        "cts": ts,
        "data": {"s": symbol, "b": [list(bid)] if bid else [], "a": [list(ask)] if ask else [], "u": u, "seq": u * 10},
    }


def ticker(symbol: str, ts: int, kind: str = "snapshot", **fields: str) -> dict:
    """fields: markPrice, indexPrice, fundingRate, nextFundingTime, openInterest, fundingIntervalHour..."""
    return {"topic": f"tickers.{symbol}", "type": kind, "ts": ts, "cs": ts // 7, "data": {"symbol": symbol, **fields}}


def liquidation(symbol: str, position_side: str, price: str, size: str, ts: int) -> dict:
    return {
        "topic": f"allLiquidation.{symbol}",
        "type": "snapshot",
        "ts": ts + 5,
        "data": [{"T": ts, "s": symbol, "S": position_side, "v": size, "p": price}],
    }


def linear_instrument(symbol: str, status: str = "Trading", contract_type: str = "LinearPerpetual", tick: str = "0.10"):
    """One `result.list` entry of instruments-info (category linear), trimmed to what the venue always sends."""
    base = symbol.split("-")[0].removesuffix("USDT")
    return {
        "symbol": symbol,
        "contractType": contract_type,
        "status": status,
        "baseCoin": base,
        "quoteCoin": "USDT",
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": tick},
        "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001"},
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": "USDT",
    }


LISTED = [
    linear_instrument("BTCUSDT"),
    linear_instrument("ETHUSDT", tick="0.01"),
    linear_instrument("SOLUSDT", tick="0.010"),
    linear_instrument("BTC-27MAR26", contract_type="LinearFutures"),  # a dated future: not a perp
]


class BybitServer(LoopbackServer):
    path = "/v5/public/linear"

    def __init__(self, idle_timeout_s: float | None = None, page_size: int = 2) -> None:
        super().__init__(idle_timeout_s)
        self.listed = [dict(i) for i in LISTED]
        self.page_size = page_size  # small, so the client must follow nextPageCursor
        self.rest_requests: list[str] = []
        self.rest_down = False
        self.history: dict[str, list[tuple[str, str, str, int, str]]] = {}  # as public_trade() takes them
        self.recent_limit = 1000
        self.depth: dict[str, DepthState] = {}
        self.drop_deltas: dict[str, int] = {}  # symbol -> deltas still to swallow (u advances regardless)
        self.depth_subscribes = 0

    @property
    def rest_url(self) -> str:
        return self.url.replace("ws://", "http://").removesuffix(self.path)

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        self.rest_requests.append(request.path)
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.rest_down:
            return connection.respond(503, "Service Unavailable")
        if query.get("category") != "linear":
            return self._json(connection, {"retCode": 10001, "retMsg": "params error", "result": {}, "time": 1})
        if url.path == "/v5/market/recent-trade":
            return self._json(connection, self._recent_trades(query))
        if url.path != "/v5/market/instruments-info":
            return self._json(connection, {"retCode": 10001, "retMsg": "params error", "result": {}, "time": 1})
        limit = min(int(query.get("limit", "500")), self.page_size)
        start = int(query["cursor"].removeprefix("page-")) if query.get("cursor") else 0
        page = self.listed[start : start + limit]
        cursor = f"page-{start + limit}" if start + limit < len(self.listed) else ""
        result = {"category": "linear", "list": page, "nextPageCursor": cursor}
        return self._json(connection, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1})

    def _recent_trades(self, query: dict[str, str]) -> dict:
        symbol = query.get("symbol", "")
        trades = sorted(self.history.get(symbol, []), key=lambda t: -t[3])
        limit = min(int(query.get("limit", 500)), self.recent_limit)
        items = [
            {
                "execId": tid,
                "symbol": symbol,
                "price": px,
                "size": size,
                "side": side,
                "time": str(t),
                "isBlockTrade": False,
            }
            for side, px, size, t, tid in trades[:limit]
        ]
        return {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": items}, "time": 0}

    def _json(self, connection: ServerConnection, body: object) -> Response:
        response = connection.respond(200, orjson.dumps(body).decode())
        response.headers["Content-Type"] = "application/json"
        return response

    async def on_message(self, client: Client, message: str | bytes) -> None:
        try:
            req = orjson.loads(message)
            op, req_id = req["op"], req.get("req_id", "")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self._reply(client, False, "error:request not supported", "", "")
            return
        if op == "ping":
            self.pings += 1
            await self._reply(client, True, "pong", req_id, "ping")
            return
        args = req.get("args") or []
        bad = [a for a in args if not isinstance(a, str) or a.rpartition(".")[0] not in TOPIC_KINDS]
        if op not in ("subscribe", "unsubscribe") or bad:
            await self._reply(client, False, f"error:handler not found,topic:{bad[0] if bad else op}", req_id, op)
            return
        if op == "subscribe":
            client.subs.update(args)
        else:
            client.subs.difference_update(args)
        await self._reply(client, True, "", req_id, op)
        if op == "subscribe":
            for topic in args:
                await self._depth_snapshot(client, topic)
        await self.changed()

    async def _depth_snapshot(self, client: Client, topic: str) -> None:
        """The venue answers a depth subscription with a snapshot of the current book at once."""
        kind, _, symbol = topic.rpartition(".")
        if kind not in DEPTH_KINDS or symbol not in self.depth:
            return
        self.depth_subscribes += 1
        state = self.depth[symbol]
        bids, asks = state.top(int(kind.split(".")[1]))
        await self.send(client, orjson.dumps(depth_message(topic, "snapshot", bids, asks, state.u, state.ts)).decode())

    def set_book(self, symbol: str, bids: Levels, asks: Levels, ts: int, u: int = 1) -> None:
        """The book a subscriber's first snapshot shows (no message is sent)."""
        state = self.depth[symbol] = DepthState()
        state.bids, state.asks, state.u, state.ts = dict(bids), dict(asks), u, ts

    async def depth_update(self, symbol: str, bids: Levels, asks: Levels, ts: int) -> int:
        """Moves the book to (bids, asks): one delta, the next u, to every depth subscriber (unless dropped)."""
        state = self.depth.setdefault(symbol, DepthState())
        b, a = state.diff(bids, asks)
        state.u += 1
        state.ts = ts
        if self.drop_deltas.get(symbol):
            self.drop_deltas[symbol] -= 1
            return 0
        return await self._publish_depth(symbol, lambda topic: depth_message(topic, "delta", b, a, state.u, ts))

    def drop_next_delta(self, symbol: str, count: int = 1) -> None:
        self.drop_deltas[symbol] = self.drop_deltas.get(symbol, 0) + count

    async def send_crossed(self, symbol: str, ts: int) -> int:
        """A delta (the next u) with a bid at the best ask: what a client sees after missing updates."""
        state = self.depth[symbol]
        best_ask = min(state.asks, key=Decimal)
        state.u += 1
        state.ts = ts
        entry = [[best_ask, "1"]]
        return await self._publish_depth(symbol, lambda topic: depth_message(topic, "delta", entry, [], state.u, ts))

    async def restart_depth(self, symbol: str, ts: int) -> int:
        """A venue-side restart: numbering starts again, every subscriber gets a snapshot with u = 1."""
        state = self.depth[symbol]
        state.u, state.ts = 1, ts
        return await self._publish_depth(
            symbol, lambda topic: depth_message(topic, "snapshot", *state.top(int(topic.split(".")[1])), 1, ts)
        )

    async def _publish_depth(self, symbol: str, message) -> int:
        sent = 0
        for kind in DEPTH_KINDS:
            topic = f"{kind}.{symbol}"
            if self.receivers(topic):
                sent += await self.publish_raw(topic, orjson.dumps(message(topic)).decode())
        return sent

    async def _reply(self, client: Client, success: bool, ret_msg: str, req_id: str, op: str) -> None:
        await self.send(
            client,
            orjson.dumps(
                {"success": success, "ret_msg": ret_msg, "conn_id": f"c{id(client)}", "req_id": req_id, "op": op}
            ).decode(),
        )

    async def publish(self, payload: dict) -> int:
        return await self.publish_raw(payload["topic"], orjson.dumps(payload).decode())
