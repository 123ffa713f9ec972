"""A loopback OKX v5 public stream: subscribe answered once per channel argument, unknown channels
answered with an error event, the text "ping" answered with "pong", the 30 s idle rule (a connection
with no traffic from the client is closed), and REST GET /api/v5/public/instruments on the same port."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from ingest.sim.server import Client, LoopbackServer

CHANNELS = ("trades", "bbo-tbt", "mark-price", "index-tickers", "funding-rate", "open-interest", "liquidation-orders")
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
        await self.changed()

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
