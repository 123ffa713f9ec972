"""`tower metabase provision`: make a Metabase instance show the dashboards in metabase/, idempotently.

health -> first-user setup or login (or API key) -> database connection as the read-only role ->
collection -> cards upserted by name -> dashboards upserted by name (PUT with the full dashcards list)
-> optional public links. A second run with nothing changed creates and updates nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from metabase import payloads
from metabase.api import MetabaseClient, MetabaseError
from metabase.settings import MetabaseSettings
from metabase.spec import Dashboard

log = logging.getLogger("tower.metabase")
REFRESH_FRAGMENT = "#refresh=60"


@dataclass
class DashboardLink:
    name: str
    dashboard_id: int
    url: str
    public_url: str | None = None


@dataclass
class ProvisionReport:
    auth: str = ""  # setup | login | api-key
    database: str = ""  # created | updated | unchanged
    database_id: int = 0
    collection: str = ""
    collection_id: int = 0
    cards: Counter = field(default_factory=Counter)  # created / updated / unchanged
    dashboards: Counter = field(default_factory=Counter)
    links: list[DashboardLink] = field(default_factory=list)

    def summary(self) -> str:
        def counts(c: Counter) -> str:
            return " ".join(f"{k}={c[k]}" for k in ("created", "updated", "unchanged"))

        return (
            f"RESULT metabase provision: auth={self.auth} database={self.database} "
            f"collection={self.collection} cards {counts(self.cards)} dashboards {counts(self.dashboards)}"
        )


def provision(
    settings: MetabaseSettings,
    dashboards: list[Dashboard],
    *,
    public: bool = False,
    client: MetabaseClient | None = None,
    poll_s: float = 2.0,
) -> ProvisionReport:
    settings.check_credentials()
    own = client is None
    client = client or MetabaseClient(settings.metabase_url)
    report = ProvisionReport()
    try:
        client.wait_healthy(settings.metabase_wait_s, poll_s=poll_s)
        report.auth = authenticate(client, settings)
        report.database_id, report.database = ensure_database(client, settings)
        report.collection_id, report.collection = ensure_collection(client, settings.metabase_collection)
        if public:
            client.enable_public_sharing()
        for d in dashboards:
            card_ids = upsert_cards(client, d, report)
            dashboard_id = upsert_dashboard(client, d, card_ids, report)
            url = f"{settings.public_base}/dashboard/{dashboard_id}{REFRESH_FRAGMENT}"
            link = DashboardLink(d.name, dashboard_id, url)
            if public:
                uuid = client.dashboard_public_link(dashboard_id)
                link.public_url = f"{settings.public_base}/public/dashboard/{uuid}{REFRESH_FRAGMENT}"
            report.links.append(link)
    finally:
        if own:
            client.close()
    return report


def authenticate(client: MetabaseClient, s: MetabaseSettings) -> str:
    props = client.session_properties()
    set_up = bool(props.get("has-user-setup"))
    if s.metabase_api_key:
        if not set_up:
            raise MetabaseError(
                "Metabase has no admin yet, so no API key can exist: set TOWER_METABASE_EMAIL and "
                "TOWER_METABASE_PASSWORD for the first run"
            )
        client.use_api_key(s.metabase_api_key)
        client.collections()  # fails with 401 now rather than halfway through
        return "api-key"
    if not set_up:
        token = props.get("setup-token")
        if not token:
            raise MetabaseError("Metabase reports no admin user but gave no setup-token in /api/session/properties")
        try:
            client.use_session(
                client.setup(
                    {
                        "token": token,
                        "user": {
                            "email": s.metabase_email,
                            "password": s.metabase_password,
                            "first_name": s.metabase_first_name,
                            "last_name": s.metabase_last_name,
                            "site_name": s.metabase_site_name,
                        },
                        "prefs": {"site_name": s.metabase_site_name, "site_locale": "en", "allow_tracking": False},
                    }
                )
            )
            log.info("created the first Metabase admin %s", s.metabase_email)
            return "setup"
        except MetabaseError as exc:
            if exc.status != 403:  # 403: someone completed setup since we asked; log in instead
                raise MetabaseError(f"first-user setup failed: {exc}", exc.status) from exc
    try:
        client.use_session(client.login(s.metabase_email, s.metabase_password))
    except MetabaseError as exc:
        raise MetabaseError(f"cannot log in to Metabase as {s.metabase_email}: {exc}", exc.status) from exc
    return "login"


def ensure_database(client: MetabaseClient, s: MetabaseSettings) -> tuple[int, str]:
    details = {
        "host": s.metabase_db_host,
        "port": s.metabase_db_port,
        "dbname": s.metabase_db_name,
        "user": s.metabase_db_user,
        "password": s.readonly_password,
        "ssl": s.metabase_db_ssl,
    }
    for db in client.databases():
        if db.get("name") != s.metabase_database_name:
            continue
        have = db.get("details") or {}
        same = (
            have.get("host") == details["host"]
            and str(have.get("port")) == str(details["port"])
            and have.get("dbname") == details["dbname"]
            and have.get("user") == details["user"]
            and db.get("engine") == "postgres"
        )
        if same:
            return db["id"], "unchanged"
        client.update_database(db["id"], {"engine": "postgres", "details": details})
        log.info("updated the connection details of Metabase database %s", db["id"])
        return db["id"], "updated"
    created = client.create_database(
        {
            "engine": "postgres",
            "name": s.metabase_database_name,
            "details": details,
            "is_full_sync": True,
            "auto_run_queries": True,
        }
    )
    try:
        client.sync_schema(created["id"])  # so the ops tables show up for ad-hoc questions too
    except MetabaseError as exc:
        log.warning("schema sync request failed (cards do not need it): %s", exc)
    return created["id"], "created"


def ensure_collection(client: MetabaseClient, name: str) -> tuple[int, str]:
    for c in client.collections():
        if (
            c.get("name") == name
            and isinstance(c.get("id"), int)
            and not c.get("archived")
            and not c.get("personal_owner_id")
        ):
            return c["id"], "unchanged"
    created = client.create_collection(
        {
            "name": name,
            "parent_id": None,
            "description": "Dashboards provisioned by `tower metabase provision`; edit them in the repo.",
        }
    )
    return created["id"], "created"


def upsert_cards(client: MetabaseClient, d: Dashboard, report: ProvisionReport) -> dict[str, int]:
    existing = _by_name(client.collection_items(report.collection_id, "card"))
    ids = {}
    for card in d.cards:
        body = payloads.card_payload(d, card, report.database_id, report.collection_id)
        current = existing.get(card.name)
        if current is None:
            ids[card.key] = client.create_card(body)["id"]
            report.cards["created"] += 1
            continue
        ids[card.key] = current["id"]
        saved = client.card(current["id"])
        if payloads.fingerprint_of(saved.get("description")) == payloads.fingerprint_of(body["description"]):
            report.cards["unchanged"] += 1
        else:
            client.update_card(current["id"], body)
            report.cards["updated"] += 1
    return ids


def upsert_dashboard(client: MetabaseClient, d: Dashboard, card_ids: dict[str, int], report: ProvisionReport) -> int:
    description = "\n\n".join(x for x in (d.description, payloads.MANAGED_NOTE) if x)
    parameters = payloads.dashboard_parameters(d)
    found = _by_name(client.collection_items(report.collection_id, "dashboard")).get(d.name)
    if found is None:
        dashboard_id = client.create_dashboard(
            {
                "name": d.name,
                "description": description,
                "collection_id": report.collection_id,
                "parameters": parameters,
            }
        )["id"]
        current = client.dashboard(dashboard_id)
        outcome = "created"
    else:
        dashboard_id = found["id"]
        current = client.dashboard(dashboard_id)
        outcome = "updated"
    have = current.get("dashcards") or []
    reuse = {}
    for dc in sorted(have, key=lambda x: x["id"]):
        if dc.get("card_id") is not None:
            reuse.setdefault(dc["card_id"], dc["id"])
    want = payloads.dashcards(d, card_ids, reuse)
    unchanged = (
        current.get("name") == d.name
        and (current.get("description") or "") == description
        and sorted(map(payloads.parameter_shape, current.get("parameters") or []))
        == sorted(map(payloads.parameter_shape, parameters))
        and sorted(map(payloads.dashcard_shape, have)) == sorted(map(payloads.dashcard_shape, want))
        and not current.get("tabs")
    )
    if unchanged and outcome == "updated":
        report.dashboards["unchanged"] += 1
        return dashboard_id
    client.update_dashboard(
        dashboard_id,
        {"name": d.name, "description": description, "parameters": parameters, "dashcards": want, "tabs": []},
    )
    report.dashboards[outcome] += 1
    return dashboard_id


def _by_name(items: list[dict]) -> dict[str, dict]:
    """Name -> item; with duplicates (a copy made in the UI) the oldest wins."""
    out: dict[str, dict] = {}
    for item in sorted(items, key=lambda i: i["id"]):
        if not item.get("archived"):
            out.setdefault(item["name"], item)
    return out
