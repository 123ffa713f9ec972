"""`tower metabase provision` against a loopback server implementing Metabase v0.62's documented contract
(tests/support/metabase_fake.py): setup-token flow, login, API key, idempotent upserts, filter wiring, public links."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from metabase import spec, template
from metabase.api import MetabaseError
from metabase.provision import provision
from metabase.settings import MetabaseSettings
from tests.support.metabase_fake import FakeMetabase
from tower import cli

RO_PASSWORD = "ro-secret-1"
ADMIN = {"metabase_email": "ops@example.com", "metabase_password": "Long-Unusual-passphrase-42"}
DASHBOARDS = spec.load_all()
N_CARDS = sum(len(d.cards) for d in DASHBOARDS)


@pytest.fixture
def fake():
    with FakeMetabase(db_passwords={"tower_readonly": RO_PASSWORD}) as server:
        yield server


def settings_for(server: FakeMetabase, **overrides) -> MetabaseSettings:
    values = {
        "metabase_url": server.url,
        "metabase_public_url": "http://localhost:3000",
        "metabase_db_host": "timescaledb",
        "metabase_db_port": 5432,
        "metabase_db_name": "tower",
        "readonly_password": RO_PASSWORD,
        "metabase_wait_s": 5,
        **ADMIN,
        **overrides,
    }
    return MetabaseSettings(**values)


def run(server, dashboards=DASHBOARDS, **kw):
    public = kw.pop("public", False)
    return provision(settings_for(server, **kw), dashboards, public=public, poll_s=0.01)


def test_first_run_sets_up_metabase_and_wires_every_filter(fake):
    fake.unhealthy_polls = 3
    report = run(fake)

    assert [p for p in fake.requests if p[1] == "/api/health"][:3] == [("GET", "/api/health", 503)] * 3
    assert report.auth == "setup" and "ops@example.com" in fake.users
    assert (report.database, report.collection) == ("created", "created")
    db = fake.databases[report.database_id]
    assert db["engine"] == "postgres"
    assert {k: db["details"][k] for k in ("host", "port", "dbname", "user", "password")} == {
        "host": "timescaledb",
        "port": 5432,
        "dbname": "tower",
        "user": "tower_readonly",
        "password": RO_PASSWORD,
    }
    assert report.cards["created"] == N_CARDS == len(fake.cards)
    assert report.dashboards["created"] == 3

    by_name = {c["name"]: c for c in fake.cards.values()}
    for d in DASHBOARDS:
        dash = next(x for x in fake.dashboards.values() if x["name"] == d.name)
        assert dash["collection_id"] == report.collection_id
        assert {p["slug"] for p in dash["parameters"]} == {f.slug for f in d.filters}
        assert len(dash["dashcards"]) == len(d.cards)
        params = {p["id"]: p for p in dash["parameters"]}
        for card in d.cards:
            saved = by_name[card.name]
            assert saved["dataset_query"]["native"]["query"] == card.sql
            assert saved["display"] == card.display
            assert saved["collection_id"] == report.collection_id
            tags = saved["dataset_query"]["native"]["template-tags"]
            for name in template.required_tags(card.sql):  # e.g. {{hours}}, {{asset}} in cross_venue_basis
                assert tags[name]["required"] is True and tags[name]["default"] == str(d.filter(name).default)
            dc = next(x for x in dash["dashcards"] if x["card_id"] == saved["id"])
            assert (dc["row"], dc["col"], dc["size_x"], dc["size_y"]) == (card.row, card.col, card.size_x, card.size_y)
            wired = {params[m["parameter_id"]]["slug"] for m in dc["parameter_mappings"]}
            assert wired == set(card.tags)
            assert all(m["card_id"] == saved["id"] for m in dc["parameter_mappings"])
    assert [link.url for link in report.links] == [
        f"http://localhost:3000/dashboard/{link.dashboard_id}#refresh=60" for link in report.links
    ]


def test_second_run_creates_and_changes_nothing(fake):
    first = run(fake)
    before = len(fake.requests)
    second = run(fake)
    later = fake.requests[before:]

    assert second.auth == "login"
    assert ("POST", "/api/setup", 403) not in later and not any(r[1] == "/api/setup" for r in later)
    writes = [r for r in later if r[0] in ("POST", "PUT", "DELETE") and r[1] != "/api/session"]
    assert writes == []
    assert (second.database, second.collection) == ("unchanged", "unchanged")
    assert second.cards["unchanged"] == N_CARDS and second.dashboards["unchanged"] == 3
    assert [x.url for x in second.links] == [x.url for x in first.links]
    assert len(fake.cards) == N_CARDS and len(fake.dashboards) == 3 and len(fake.databases) == 2


def test_changed_sql_updates_that_card_in_place(fake):
    run(fake)
    ids = {c["name"]: c["id"] for c in fake.cards.values()}
    d = DASHBOARDS[0]
    edited = dataclasses.replace(d.cards[0], sql=d.cards[0].sql + "\n-- edited\n")
    dashboards = [dataclasses.replace(d, cards=(edited, *d.cards[1:])), *DASHBOARDS[1:]]

    report = run(fake, dashboards)

    assert report.cards["updated"] == 1 and report.cards["unchanged"] == N_CARDS - 1
    assert {c["name"]: c["id"] for c in fake.cards.values()} == ids
    assert fake.cards[ids[edited.name]]["dataset_query"]["native"]["query"].endswith("-- edited\n")
    assert report.dashboards["unchanged"] == 3


def test_layout_change_updates_the_dashboard_and_keeps_dashcard_ids(fake):
    run(fake)
    d = DASHBOARDS[0]
    dash = next(x for x in fake.dashboards.values() if x["name"] == d.name)
    dashcard_ids = sorted(dc["id"] for dc in dash["dashcards"])
    last = d.cards[-1]
    moved = dataclasses.replace(last, row=last.row + 10)
    dropped = d.cards[0]
    dashboards = [dataclasses.replace(d, cards=(*d.cards[1:-1], moved)), *DASHBOARDS[1:]]

    report = run(fake, dashboards)

    assert report.dashboards["updated"] == 1 and report.dashboards["unchanged"] == 2
    dash = fake.dashboards[dash["id"]]
    card_id = {c["name"]: c["id"] for c in fake.cards.values()}
    assert card_id[dropped.name] not in {dc["card_id"] for dc in dash["dashcards"]}
    row = next(dc["row"] for dc in dash["dashcards"] if dc["card_id"] == card_id[moved.name])
    assert row == last.row + 10
    assert {dc["id"] for dc in dash["dashcards"]} < set(dashcard_ids)


def test_public_links_are_created_once(fake):
    first = run(fake, public=True)
    second = run(fake, public=True)
    assert fake.settings["enable-public-sharing"] is True
    assert all(
        link.public_url
        and link.public_url.startswith("http://localhost:3000/public/dashboard/")
        and link.public_url.endswith("#refresh=60")
        for link in first.links
    )
    assert [x.public_url for x in second.links] == [x.public_url for x in first.links]


def test_api_key_is_used_instead_of_a_session(fake):
    run(fake)
    key = fake.add_api_key()
    before = len(fake.requests)
    report = run(fake, metabase_email=None, metabase_password=None, metabase_api_key=key)
    assert report.auth == "api-key" and report.cards["unchanged"] == N_CARDS
    assert not any(r[1] in ("/api/session", "/api/setup") for r in fake.requests[before:])


def test_api_key_before_setup_says_what_to_do(fake):
    with pytest.raises(MetabaseError, match="TOWER_METABASE_EMAIL"):
        run(fake, metabase_email=None, metabase_password=None, metabase_api_key="mb_x")


def test_wrong_admin_password_is_a_clear_error(fake):
    run(fake)
    with pytest.raises(MetabaseError, match="cannot log in to Metabase as ops@example.com.*401"):
        run(fake, metabase_password="Another-Long-passphrase-7")


def test_too_common_password_fails_setup_with_metabases_reason(fake):
    with pytest.raises(MetabaseError, match="first-user setup failed.*too common"):
        run(fake, metabase_password="password")
    assert fake.users == {}


def test_wrong_readonly_password_is_reported_by_the_connection_check(fake):
    with pytest.raises(MetabaseError, match="POST /api/database: HTTP 400.*Password is incorrect"):
        run(fake, readonly_password="nope")


def test_metabase_that_never_gets_healthy_times_out_clearly(fake):
    fake.unhealthy_polls = 10_000
    with pytest.raises(MetabaseError, match=r"not healthy after 0.2 s \(last /api/health: HTTP 503"):
        run(fake, metabase_wait_s=0.2)


def test_unreachable_metabase_times_out_clearly():
    with pytest.raises(MetabaseError, match="not healthy after"):
        provision(
            MetabaseSettings(
                metabase_url="http://127.0.0.1:9",
                metabase_db_host="h",
                metabase_db_name="n",
                readonly_password="x",
                metabase_wait_s=0.1,
                **ADMIN,
            ),
            DASHBOARDS,
            poll_s=0.01,
        )


def test_the_contract_server_holds_metabase_to_its_rules(fake):
    run(fake)
    http = httpx.Client(base_url=fake.url)
    assert http.post("/api/setup", json={"token": fake.setup_token}).status_code == 403
    assert http.get("/api/collection").status_code == 401
    session = http.post(
        "/api/session", json={"username": ADMIN["metabase_email"], "password": ADMIN["metabase_password"]}
    ).json()["id"]
    http.headers["X-Metabase-Session"] = session
    dash = next(iter(fake.dashboards.values()))
    dc = next(x for x in dash["dashcards"] if x["parameter_mappings"])
    no_card_id = [{k: v for k, v in m.items() if k != "card_id"} for m in dc["parameter_mappings"]]
    body = {
        "dashcards": [{**x, "parameter_mappings": no_card_id} if x["id"] == dc["id"] else x for x in dash["dashcards"]]
    }
    response = http.put(f"/api/dashboard/{dash['id']}", json=body)
    assert response.status_code == 400 and "card_id" in response.text
    assert http.post(f"/api/dashboard/{dash['id']}/cards", json={"cardId": dc["card_id"]}).status_code == 404


def test_cli_prints_dashboard_urls_and_a_result_line(fake, monkeypatch, capsys):
    env = {
        "TOWER_METABASE_URL": fake.url,
        "TOWER_METABASE_EMAIL": ADMIN["metabase_email"],
        "TOWER_METABASE_PASSWORD": ADMIN["metabase_password"],
        "TOWER_METABASE_DB_HOST": "timescaledb",
        "TOWER_METABASE_DB_NAME": "tower",
        "TOWER_READONLY_PASSWORD": RO_PASSWORD,
        "TOWER_METABASE_PUBLIC_URL": "http://localhost:3000",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert cli.main(["metabase", "provision"]) == 0
    out = capsys.readouterr().out
    for d in DASHBOARDS:
        assert any(
            line.startswith(d.name) and "http://localhost:3000/dashboard/" in line and line.endswith("#refresh=60")
            for line in out.splitlines()
        )
    assert f"cards created={N_CARDS} updated=0 unchanged=0" in out
    assert out.splitlines()[-1].startswith("RESULT metabase provision: auth=setup database=created")

    monkeypatch.delenv("TOWER_READONLY_PASSWORD")
    assert cli.main(["metabase", "provision"]) == 2
    assert "TOWER_READONLY_PASSWORD is not set" in capsys.readouterr().err
