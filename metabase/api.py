"""A thin Metabase REST client: one method per endpoint the provisioner calls, errors that say what failed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

log = logging.getLogger("tower.metabase")


class MetabaseError(Exception):
    """Metabase refused a request or never became ready; the message has the endpoint and Metabase's reason."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        for key in ("message", "errors", "specific-errors"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


class MetabaseClient:
    def __init__(self, base_url: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, headers={"Content-Type": "application/json"}
        )

    def close(self) -> None:
        self.http.close()

    # -- auth ------------------------------------------------------------------------------------------

    def use_session(self, session_id: str) -> None:
        self.http.headers["X-Metabase-Session"] = session_id

    def use_api_key(self, key: str) -> None:
        self.http.headers["x-api-key"] = key

    # -- plumbing --------------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, json: Any = None, params: Any = None, ok: tuple[int, ...] = (200, 202, 204)
    ) -> Any:
        try:
            response = self.http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise MetabaseError(f"{method} {path}: cannot reach Metabase at {self.base_url}: {exc}") from exc
        if response.status_code not in ok:
            raise MetabaseError(
                f"{method} {path}: HTTP {response.status_code}: {_reason(response)}", status=response.status_code
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def wait_healthy(
        self, timeout_s: float, *, poll_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Block until GET /api/health answers 200 {"status": "ok"} (503 while Metabase starts)."""
        deadline = clock() + timeout_s
        last = "no answer"
        while True:
            try:
                response = self.http.get("/api/health")
                if response.status_code == 200 and _status(response) == "ok":
                    return
                last = f"HTTP {response.status_code} {_reason(response)}"
            except httpx.HTTPError as exc:
                last = f"{exc.__class__.__name__}: {exc}"
            if clock() >= deadline:
                raise MetabaseError(
                    f"Metabase at {self.base_url} was not healthy after {timeout_s:g} s (last /api/health: {last})"
                )
            log.info("waiting for Metabase at %s (%s)", self.base_url, last)
            time.sleep(poll_s)

    # -- endpoints -------------------------------------------------------------------------------------

    def session_properties(self) -> dict:
        return self.request("GET", "/api/session/properties")

    def setup(self, payload: dict) -> str:
        return self.request("POST", "/api/setup", json=payload)["id"]

    def login(self, username: str, password: str) -> str:
        return self.request("POST", "/api/session", json={"username": username, "password": password})["id"]

    def databases(self) -> list[dict]:
        return _rows(self.request("GET", "/api/database"))

    def create_database(self, payload: dict) -> dict:
        return self.request("POST", "/api/database", json=payload)

    def update_database(self, database_id: int, payload: dict) -> dict:
        return self.request("PUT", f"/api/database/{database_id}", json=payload)

    def sync_schema(self, database_id: int) -> None:
        self.request("POST", f"/api/database/{database_id}/sync_schema")

    def collections(self) -> list[dict]:
        return _rows(self.request("GET", "/api/collection"))

    def create_collection(self, payload: dict) -> dict:
        return self.request("POST", "/api/collection", json=payload)

    def collection_items(self, collection_id: int, model: str) -> list[dict]:
        return _rows(self.request("GET", f"/api/collection/{collection_id}/items", params={"models": model}))

    def card(self, card_id: int) -> dict:
        return self.request("GET", f"/api/card/{card_id}")

    def create_card(self, payload: dict) -> dict:
        return self.request("POST", "/api/card", json=payload)

    def update_card(self, card_id: int, payload: dict) -> dict:
        return self.request("PUT", f"/api/card/{card_id}", json=payload)

    def dashboard(self, dashboard_id: int) -> dict:
        return self.request("GET", f"/api/dashboard/{dashboard_id}")

    def create_dashboard(self, payload: dict) -> dict:
        return self.request("POST", "/api/dashboard", json=payload)

    def update_dashboard(self, dashboard_id: int, payload: dict) -> dict:
        return self.request("PUT", f"/api/dashboard/{dashboard_id}", json=payload)

    def enable_public_sharing(self) -> None:
        self.request("PUT", "/api/setting/enable-public-sharing", json={"value": True})

    def dashboard_public_link(self, dashboard_id: int) -> str:
        return self.request("POST", f"/api/dashboard/{dashboard_id}/public_link")["uuid"]


def _status(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("status") if isinstance(body, dict) else None


def _rows(body: Any) -> list[dict]:
    """List endpoints answer either a bare list or {"data": [...], "total": n} depending on version."""
    if isinstance(body, dict) and "data" in body:
        return list(body["data"])
    return list(body or [])
