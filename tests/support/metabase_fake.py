"""A Metabase stand-in on loopback implementing the documented contract (v0.62.x) of the endpoints the
provisioner calls. Metabase itself cannot run here (no registry ships it to these machines).

Contract sources: Metabase docs/api/{setup,session,database,collection,card,dashboard}.md and the
notes in ../shared/docs/timescaledb-and-metabase.md section B (payloads checked against
dashboards_rest/api.clj, setup/api.clj). Where Metabase is lenient in a way that breaks dashboards,
this double is strict on purpose: a parameter mapping without card_id is accepted by Metabase but then
silently ignored at query time (metabase#77693); here it is a 400, so the provisioner cannot regress.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VERSION = "v0.62.4"
OBFUSCATED = "**MetabasePass**"
COMMON_PASSWORDS = {"password", "12345678", "metabase", "qwerty123"}
DASHCARD_KEYS = {
    "id",
    "size_x",
    "size_y",
    "row",
    "col",
    "card_id",
    "action_id",
    "dashboard_tab_id",
    "parameter_mappings",
    "visualization_settings",
    "inline_parameters",
    "series",
}
TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
# Dashboard parameter type -> template tag types it can drive.
COMPATIBLE = {
    "string/=": {"text"},
    "category": {"text"},
    "number/=": {"number"},
    "date/single": {"date"},
    "date/range": {"date"},
    "date/all-options": {"date"},
}


class ApiError(Exception):
    def __init__(self, status: int, body):
        super().__init__(str(body))
        self.status, self.body = status, body


def bad(field: str, message: str) -> ApiError:
    return ApiError(400, {"errors": {field: message}, "specific-errors": {field: [message]}})


class FakeMetabase:
    def __init__(self, *, unhealthy_polls: int = 0, db_passwords: dict[str, str] | None = None):
        self.lock = threading.Lock()
        self.unhealthy_polls = unhealthy_polls
        self.db_passwords = db_passwords or {}  # what the "database server" accepts: user -> password
        self.setup_token = str(uuid.uuid4())
        self.users: dict[str, dict] = {}
        self.sessions: dict[str, str] = {}
        self.api_keys: set[str] = set()
        self.settings = {"enable-public-sharing": False, "site-name": None}
        self.ids = itertools.count(2)
        self.dashcard_ids = itertools.count(100)
        self.databases = {
            1: {"id": 1, "name": "Sample Database", "engine": "h2", "details": {"db": "sample"}, "is_sample": True}
        }
        self.collections: dict[int, dict] = {}
        self.cards: dict[int, dict] = {}
        self.dashboards: dict[int, dict] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def writes(self, method: str | None = None) -> list[tuple[str, str, int]]:
        """Successful requests that change state (POST/PUT/DELETE), optionally of one method."""
        return [
            r
            for r in self.requests
            if r[0] in ("POST", "PUT", "DELETE")
            and r[2] < 400
            and (method is None or r[0] == method)
            and r[1] not in ("/api/session",)
        ]

    # -- routing ---------------------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, method: str):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = "not json"
                with fake.lock:
                    try:
                        status, payload = fake.route(method, parts.path, parse_qs(parts.query), body, self.headers)
                    except ApiError as exc:
                        status, payload = exc.status, exc.body
                    fake.requests.append((method, parts.path, status))
                data = (
                    b""
                    if payload is None
                    else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(payload, bytes) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PUT(self):
                self._serve("PUT")

            def do_DELETE(self):
                self._serve("DELETE")

        return Handler

    def route(self, method, path, query, body, headers):
        path = path.rstrip("/") or "/"
        if (method, path) == ("GET", "/api/health"):
            if self.unhealthy_polls > 0:
                self.unhealthy_polls -= 1
                return 503, {"status": "initializing", "progress": 0.4}
            return 200, {"status": "ok"}
        if self.unhealthy_polls > 0:
            return 503, b"Metabase is still initializing"
        if (method, path) == ("GET", "/api/session/properties"):
            return 200, {
                "setup-token": self.setup_token,
                "has-user-setup": bool(self.users),
                "version": {"tag": VERSION},
                "site-name": self.settings["site-name"],
            }
        if (method, path) == ("POST", "/api/setup"):
            return self.setup(body)
        if (method, path) == ("POST", "/api/session"):
            return self.login(body)
        self.authenticate(headers)
        m = re.fullmatch(r"/api/(\w+)(?:/(\d+|root))?(?:/([\w-]+))?", path)
        if m is None:
            raise ApiError(404, b"API endpoint does not exist.")
        resource, ident, action = m.group(1), m.group(2), m.group(3)
        key = (method, resource, ident is not None, action)
        ident = int(ident) if ident and ident.isdigit() else ident
        handlers = {
            ("GET", "database", False, None): lambda: self.list_databases(),
            ("POST", "database", False, None): lambda: self.create_database(body),
            ("GET", "database", True, None): lambda: (200, self.public_db(self.get(self.databases, ident))),
            ("PUT", "database", True, None): lambda: self.update_database(ident, body),
            ("POST", "database", True, "sync_schema"): lambda: self.sync_schema(ident),
            ("GET", "collection", False, None): lambda: self.list_collections(),
            ("POST", "collection", False, None): lambda: self.create_collection(body),
            ("GET", "collection", True, "items"): lambda: self.collection_items(ident, query),
            ("POST", "card", False, None): lambda: self.save_card(None, body),
            ("GET", "card", True, None): lambda: (200, self.card_response(self.get(self.cards, ident))),
            ("PUT", "card", True, None): lambda: self.save_card(ident, body),
            ("POST", "dashboard", False, None): lambda: self.create_dashboard(body),
            ("GET", "dashboard", True, None): lambda: (200, self.dashboard_response(self.get(self.dashboards, ident))),
            ("PUT", "dashboard", True, None): lambda: self.update_dashboard(ident, body),
            ("POST", "dashboard", True, "public_link"): lambda: self.public_link(ident),
            ("PUT", "setting", False, "enable-public-sharing"): lambda: self.set_public_sharing(body),
        }
        handler = handlers.get(key)
        if handler is None:
            # e.g. POST /api/dashboard/:id/cards, removed in 0.47
            raise ApiError(404, b"API endpoint does not exist.")
        return handler()

    @staticmethod
    def get(table: dict, ident):
        if ident not in table:
            raise ApiError(404, b"Not found.")
        return table[ident]

    # -- auth ------------------------------------------------------------------------------------------

    def setup(self, body):
        if self.users:
            raise ApiError(
                403,
                {
                    "message": "The /api/setup route can only be used to create the first user, "
                    "however a user currently exists."
                },
            )
        if not isinstance(body, dict) or body.get("token") != self.setup_token:
            raise bad("token", "Token does not match the setup token.")
        user = body.get("user") or {}
        email, password = user.get("email"), user.get("password")
        if not isinstance(email, str) or "@" not in email:
            raise bad("email", "value must be a valid email address.")
        if not isinstance(password, str) or len(password) < 8 or password.lower() in COMMON_PASSWORDS:
            raise bad("password", "password is too common.")
        site_name = (body.get("prefs") or {}).get("site_name")
        if not isinstance(site_name, str) or not site_name.strip():
            raise bad("site_name", "value must be a non-blank string.")
        self.users[email] = {
            "id": 1,
            "email": email,
            "password": password,
            "is_superuser": True,
            "first_name": user.get("first_name"),
            "last_name": user.get("last_name"),
        }
        self.settings["site-name"] = site_name
        self.collections[next(self.ids)] = {
            "name": f"{user.get('first_name')}'s Personal Collection",
            "personal_owner_id": 1,
            "location": "/",
            "archived": False,
        }
        for cid, c in self.collections.items():
            c["id"] = cid
        return 200, {"id": self.new_session(email)}

    def new_session(self, email: str) -> str:
        session = str(uuid.uuid4())
        self.sessions[session] = email
        return session

    def login(self, body):
        if not isinstance(body, dict) or not body.get("username") or not body.get("password"):
            raise bad("username", "value must be a non-blank string.")
        user = self.users.get(body["username"])
        if user is None or user["password"] != body["password"]:
            raise ApiError(401, {"errors": {"password": "did not match stored password"}})
        return 200, {"id": self.new_session(body["username"])}

    def authenticate(self, headers):
        if headers.get("X-Metabase-Session") in self.sessions or headers.get("x-api-key") in self.api_keys:
            return
        raise ApiError(401, b"Unauthenticated")

    def add_api_key(self) -> str:
        key = "mb_" + uuid.uuid4().hex
        self.api_keys.add(key)
        return key

    # -- databases -------------------------------------------------------------------------------------

    def public_db(self, db):
        out = copy.deepcopy(db)
        if "password" in out.get("details", {}):
            out["details"]["password"] = OBFUSCATED
        return out

    def list_databases(self):
        rows = [self.public_db(d) for d in self.databases.values()]
        return 200, {"data": rows, "total": len(rows)}

    def check_connection(self, details):
        for k in ("host", "port", "dbname", "user"):
            if not details.get(k):
                raise bad("details", f"{k} is required")
        expected = self.db_passwords.get(details["user"])
        if expected is not None and details.get("password") != expected:
            raise ApiError(
                400,
                {
                    "message": "Looks like the Username or Password is incorrect.",
                    "errors": {"password": "Looks like the Username or Password is incorrect."},
                },
            )

    def create_database(self, body):
        if not isinstance(body, dict) or not body.get("name"):
            raise bad("name", "value must be a non-blank string.")
        if body.get("engine") not in ("postgres", "h2", "mysql"):
            raise bad("engine", "value must be a valid database engine.")
        self.check_connection(body.get("details") or {})
        db_id = next(self.ids)
        self.databases[db_id] = {
            "id": db_id,
            "name": body["name"],
            "engine": body["engine"],
            "details": copy.deepcopy(body["details"]),
            "is_full_sync": body.get("is_full_sync", True),
            "auto_run_queries": body.get("auto_run_queries", True),
        }
        return 200, self.public_db(self.databases[db_id])

    def sync_schema(self, ident):
        self.get(self.databases, ident)
        return 200, {"status": "ok"}

    def update_database(self, ident, body):
        db = self.get(self.databases, ident)
        if isinstance(body, dict) and body.get("details"):
            details = copy.deepcopy(body["details"])
            if details.get("password") == OBFUSCATED:
                details["password"] = db["details"].get("password")
            self.check_connection(details)
            db["details"] = details
        return 200, self.public_db(db)

    # -- collections -----------------------------------------------------------------------------------

    def list_collections(self):
        root = {"id": "root", "name": "Our analytics", "location": None, "archived": False}
        return 200, [root] + [copy.deepcopy(c) for c in self.collections.values()]

    def create_collection(self, body):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
            raise bad("name", "value must be a non-blank string.")
        parent = body.get("parent_id")
        if parent is not None and parent not in self.collections:
            raise ApiError(404, b"Not found.")
        cid = next(self.ids)
        self.collections[cid] = {
            "id": cid,
            "name": body["name"],
            "description": body.get("description"),
            "location": "/" if parent is None else f"/{parent}/",
            "archived": False,
            "personal_owner_id": None,
        }
        return 200, copy.deepcopy(self.collections[cid])

    def collection_items(self, ident, query):
        if ident != "root":
            self.get(self.collections, ident)
        models = set(query.get("models", [])) or {"card", "dashboard", "collection"}
        items = []
        if "card" in models:
            items += [
                {
                    "id": c["id"],
                    "name": c["name"],
                    "model": "card",
                    "description": c.get("description"),
                    "display": c["display"],
                }
                for c in self.cards.values()
                if c["collection_id"] == ident and not c.get("archived")
            ]
        if "dashboard" in models:
            items += [
                {"id": d["id"], "name": d["name"], "model": "dashboard", "description": d.get("description")}
                for d in self.dashboards.values()
                if d["collection_id"] == ident and not d.get("archived")
            ]
        return 200, {"data": items, "total": len(items), "models": sorted(models), "limit": None, "offset": None}

    # -- cards -----------------------------------------------------------------------------------------

    def save_card(self, ident, body):
        if not isinstance(body, dict):
            raise bad("body", "must be a map")
        creating = ident is None
        card = {} if creating else copy.deepcopy(self.get(self.cards, ident))
        if creating:
            for field in ("name", "display", "dataset_query", "visualization_settings"):
                if field not in body:
                    raise bad(field, "value must be provided.")
        if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
            raise bad("name", "value must be a non-blank string.")
        if "visualization_settings" in body and not isinstance(body["visualization_settings"], dict):
            raise bad("visualization_settings", "value must be a map.")
        if body.get("type", "question") not in ("question", "model", "metric"):
            raise bad("type", "value must be one of: question, model, metric.")
        collection = body.get("collection_id")
        if collection is not None and collection not in self.collections:
            raise ApiError(404, b"Not found.")
        if "dataset_query" in body:
            self.check_native_query(body["dataset_query"])
        for p in body.get("parameters") or []:
            if not all(k in p for k in ("id", "slug", "type")):
                raise bad("parameters", "each parameter needs id, slug and type")
        card.update(copy.deepcopy(body))
        if creating:
            card["id"] = next(self.ids)
            card.setdefault("collection_id", None)
            card.setdefault("description", None)
        self.cards[card["id"]] = card
        return 200, self.card_response(card)

    def check_native_query(self, q):
        if not isinstance(q, dict) or q.get("type") != "native":
            raise bad("dataset_query", "only native queries are accepted by this test double")
        if q.get("database") not in self.databases:
            raise bad("dataset_query", f"database {q.get('database')} does not exist")
        native = q.get("native") or {}
        sql, tags = native.get("query"), native.get("template-tags") or {}
        if not isinstance(sql, str) or not sql.strip():
            raise bad("dataset_query", "native query must be a non-blank string")
        for name, tag in tags.items():
            if not {"id", "name", "display-name", "type"} <= set(tag) or tag["name"] != name:
                raise bad("dataset_query", f"template tag {name} needs id, name (= its key), display-name, type")
            if tag["type"] not in ("text", "number", "date", "dimension", "snippet", "card"):
                raise bad("dataset_query", f"template tag {name}: unknown type {tag['type']}")
        for name in TAG.findall(sql):
            if name not in tags:
                raise bad("dataset_query", f"{{{{{name}}}}} is not declared in template-tags")

    def card_response(self, card):
        """From 0.57 queries come back as MBQL 5 (stages), not the legacy shape the client sent."""
        out = copy.deepcopy(card)
        q = out.get("dataset_query") or {}
        out["dataset_query"] = {
            "lib/type": "mbql/query",
            "database": q.get("database"),
            "stages": [
                {
                    "lib/type": "mbql.stage/native",
                    "native": q["native"]["query"],
                    "template-tags": q["native"].get("template-tags", {}),
                }
            ],
        }
        return out

    def template_tags(self, card_id) -> dict:
        return self.cards[card_id]["dataset_query"]["native"].get("template-tags", {})

    # -- dashboards ------------------------------------------------------------------------------------

    def check_parameters(self, params):
        if not isinstance(params, list):
            raise bad("parameters", "value must be a sequence of maps")
        for p in params:
            if not isinstance(p, dict) or not all(isinstance(p.get(k), str) and p[k] for k in ("id", "slug", "type")):
                raise bad("parameters", "each parameter needs non-blank id, slug and type")

    def create_dashboard(self, body):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
            raise bad("name", "value must be a non-blank string.")
        self.check_parameters(body.get("parameters") or [])
        cid = body.get("collection_id")
        if cid is not None and cid not in self.collections:
            raise ApiError(404, b"Not found.")
        did = next(self.ids)
        self.dashboards[did] = {
            "id": did,
            "name": body["name"],
            "description": body.get("description"),
            "collection_id": cid,
            "parameters": copy.deepcopy(body.get("parameters") or []),
            "dashcards": [],
            "tabs": [],
            "public_uuid": None,
        }
        return 200, self.dashboard_response(self.dashboards[did])

    def update_dashboard(self, ident, body):
        dash = self.get(self.dashboards, ident)
        if not isinstance(body, dict):
            raise bad("body", "must be a map")
        params = body.get("parameters", dash["parameters"])
        self.check_parameters(params)
        param_types = {p["id"]: p["type"] for p in params}
        new_cards = None
        if "dashcards" in body:
            new_cards = self.check_dashcards(dash, body["dashcards"], param_types)
        for k in ("name", "description"):
            if k in body:
                dash[k] = body[k]
        dash["parameters"] = copy.deepcopy(params)
        if "tabs" in body:
            dash["tabs"] = copy.deepcopy(body["tabs"])
        if new_cards is not None:
            dash["dashcards"] = new_cards  # the list is the full state: omitted dashcards are deleted
        return 200, self.dashboard_response(dash)

    def check_dashcards(self, dash, dashcards, param_types):
        if not isinstance(dashcards, list):
            raise bad("dashcards", "value must be a sequence of maps")
        existing = {dc["id"] for dc in dash["dashcards"]}
        out = []
        for dc in dashcards:
            dc = {k: v for k, v in dc.items() if k in DASHCARD_KEYS}  # undeclared keys are stripped
            for k in ("id", "size_x", "size_y", "row", "col"):
                if not isinstance(dc.get(k), int):
                    raise bad("dashcards", f"{k} must be an integer")
            if dc["id"] >= 0 and dc["id"] not in existing:
                raise ApiError(404, {"message": f"dashcard {dc['id']} is not on dashboard {dash['id']}"})
            card_id = dc.get("card_id")
            if card_id is not None and card_id not in self.cards:
                raise bad("dashcards", f"card {card_id} does not exist")
            for m in dc.get("parameter_mappings") or []:
                if "card_id" not in m:
                    raise bad("parameter_mappings", "each parameter mapping needs card_id (metabase#77693)")
                if m["card_id"] != card_id:
                    raise bad("parameter_mappings", f"mapping card_id {m['card_id']} is not the dashcard's {card_id}")
                if m.get("parameter_id") not in param_types:
                    raise bad("parameter_mappings", f"no dashboard parameter {m.get('parameter_id')}")
                target = m.get("target")
                if not (
                    isinstance(target, list)
                    and len(target) == 2
                    and target[0] in ("variable", "dimension")
                    and isinstance(target[1], list)
                    and target[1][:1] == ["template-tag"]
                ):
                    raise bad("parameter_mappings", f"bad target {target}")
                tag = self.template_tags(card_id).get(target[1][1])
                if tag is None:
                    raise bad("parameter_mappings", f"card {card_id} has no template tag {target[1][1]}")
                wanted = "dimension" if tag["type"] == "dimension" else "variable"
                if target[0] != wanted or (
                    tag["type"] != "dimension" and tag["type"] not in COMPATIBLE.get(param_types[m["parameter_id"]], ())
                ):
                    raise bad("parameter_mappings", f"parameter {m['parameter_id']} cannot drive tag {tag['name']}")
            if dc["id"] < 0:
                dc["id"] = next(self.dashcard_ids)
            dc["dashboard_id"] = dash["id"]
            out.append(copy.deepcopy(dc))
        return out

    def dashboard_response(self, dash):
        out = copy.deepcopy(dash)
        for dc in out["dashcards"]:
            dc.setdefault("visualization_settings", {})
            dc.setdefault("series", [])
            if dc.get("card_id") is not None:
                dc["card"] = self.card_response(self.cards[dc["card_id"]])
        return out

    # -- sharing ---------------------------------------------------------------------------------------

    def set_public_sharing(self, body):
        if not isinstance(body, dict) or "value" not in body:
            raise bad("value", "value must be provided.")
        self.settings["enable-public-sharing"] = bool(body["value"])
        return 204, None

    def public_link(self, ident):
        dash = self.get(self.dashboards, ident)
        if not self.settings["enable-public-sharing"]:
            raise ApiError(400, {"message": "Public sharing is not enabled."})
        dash["public_uuid"] = dash["public_uuid"] or str(uuid.uuid4())
        return 200, {"uuid": dash["public_uuid"]}
