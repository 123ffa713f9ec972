"""A loopback Hyperliquid websocket server: subscribe/unsubscribe with subscriptionResponse, ping/pong,
errors on an unknown method, and the idle rule: a connection the server has heard nothing from for
`idle_timeout_s` is closed; and REST `POST /info {"type":"meta"}` (the perp universe) on its own port
(`rest_url`), since the WebSocket server cannot take request bodies."""

from __future__ import annotations

import ssl

import orjson

from ingest.sim.rest import HttpRequest, LoopbackRest
from ingest.sim.server import Client, LoopbackServer
from ingest.venues.hyperliquid import GREETING

KINDS = ("trades", "bbo", "l2Book", "activeAssetCtx")
UNIVERSE = {"BTC": 5, "ETH": 4, "SOL": 2}  # name -> szDecimals


def perp_asset(name: str, sz_decimals: int, delisted: bool = False) -> dict:
    """One `universe` entry of the meta answer, as the venue sends it (isDelisted only when true)."""
    entry = {"name": name, "szDecimals": sz_decimals, "maxLeverage": 40, "marginTableId": 56, "onlyIsolated": False}
    return entry | ({"isDelisted": True} if delisted else {})


def trade(coin: str, side: str, px: str, sz: str, ms: int, tid: int) -> dict:
    return {
        "coin": coin,
        "side": side,
        "px": px,
        "sz": sz,
        "time": ms,
        "hash": f"0x{tid:064x}",
        "tid": tid,
        "users": ["0x" + "1" * 40, "0x" + "2" * 40],
    }


def bbo(coin: str, ms: int, bid: tuple[str, str] | None, ask: tuple[str, str] | None) -> dict:
    def level(x):
        return None if x is None else {"px": x[0], "sz": x[1], "n": 3}

    return {"coin": coin, "time": ms, "bbo": [level(bid), level(ask)]}


def asset_ctx(coin: str, mark: str, oracle: str, funding: str, open_interest: str) -> dict:
    return {
        "coin": coin,
        "ctx": {
            "funding": funding,
            "openInterest": open_interest,
            "oraclePx": oracle,
            "markPx": mark,
            "midPx": mark,
            "premium": "0.0",
            "dayNtlVlm": "1000000.0",
            "prevDayPx": oracle,
            "impactPxs": [mark, mark],
        },
    }


class HyperliquidServer(LoopbackServer):
    path = "/ws"

    def __init__(self, idle_timeout_s: float = 60.0) -> None:
        super().__init__(idle_timeout_s)
        self.universe = [perp_asset(n, d) for n, d in UNIVERSE.items()]
        self.rest_down = False
        self.rest = LoopbackRest(self._info)

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> HyperliquidServer:
        await self.rest.start()
        await super().start(ssl_context)
        return self

    async def stop(self) -> None:
        await self.rest.stop()
        await super().stop()

    @property
    def rest_url(self) -> str:
        return self.rest.url

    def _info(self, request: HttpRequest) -> tuple[int, object]:
        if self.rest_down:
            return 503, {"error": "service unavailable"}
        try:
            kind = orjson.loads(request.body).get("type")
        except (orjson.JSONDecodeError, AttributeError):
            return 422, "Failed to deserialize the JSON body into the target type"
        if request.method != "POST" or request.path != "/info" or kind != "meta":
            return 422, "Failed to deserialize the JSON body into the target type"
        return 200, {"universe": self.universe, "marginTables": [[56, {"description": "", "marginTiers": []}]]}

    async def on_connect(self, client: Client) -> None:
        await self.send(client, GREETING)  # plain text, before anything is asked (seen on the live venue)

    async def on_message(self, client: Client, message: str | bytes) -> None:
        try:
            req = orjson.loads(message)
            method = req["method"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self._send(
                client,
                {"channel": "error", "data": f"Error parsing JSON into valid websocket request: {str(message)[:100]}"},
            )
            return
        if method == "ping":
            self.pings += 1
            await self._send(client, {"channel": "pong"})
            return
        sub = req.get("subscription") or {}
        kind, coin = sub.get("type"), sub.get("coin")
        if method == "subscribe" and kind in KINDS and coin:
            client.subs.add(f"{kind}:{coin}")
        elif method == "unsubscribe":
            client.subs.discard(f"{kind}:{coin}")
        else:
            await self._send(client, {"channel": "error", "data": f"Invalid subscription {sub}"})
            return
        await self._send(client, {"channel": "subscriptionResponse", "data": req})
        await self.changed()

    async def _send(self, client: Client, msg: dict) -> None:
        await self.send(client, orjson.dumps(msg).decode())

    async def wait_subscribed(self, kind: str, coin: str, clients: int = 1, within_s: float = 10.0) -> None:
        await super().wait_subscribed(f"{kind}:{coin}", clients, within_s)

    async def publish(self, kind: str, coin: str, data: object) -> int:
        return await self.publish_raw(f"{kind}:{coin}", orjson.dumps({"channel": kind, "data": data}).decode())
