"""Persistent usage: the SQLite and PostgreSQL databases, the management
routes and ``crossroads usage``, with real servers (two workers share one
database; a clean shutdown loses nothing)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import urllib3

from crossroads.observe.usage_sql import UsageRow
from crossroads.observe.usage_store import UsageStore, cliproxy_usage, make_query, tables
from crossroads.opsconfig import OpsSettings, UsageSettings
from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess
from tests.stores.servers import Postgres

KEY = "sk-upstream-usage-0000111"
CLIENT = "usage-client-key-123456"
NAMED = "usage-named-key-7890123"
MANAGEMENT = "usage-management-secret"
FRESH = urllib3.PoolManager(retries=False, headers={"connection": "close"})
DAY = 86400.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIChat]:
    server = FakeOpenAIChat(api_keys=[KEY]).start()
    yield server
    server.stop()


def settings(kind: str, tmp_path: Path, request: pytest.FixtureRequest, **usage: Any) -> OpsSettings:
    if kind == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        schema = f"u{os.getpid()}_{time.time_ns() % 10**9}"
        return OpsSettings(usage=UsageSettings(database="postgres", dsn=pg.dsn, schema=schema, **usage))
    return OpsSettings(auth_dir=str(tmp_path), usage=UsageSettings(**usage))


def row(ts: float, client: str, model: str, tokens: tuple[int, int] | None, status: int = 200,
        account: str | None = "acct#0") -> UsageRow:
    return UsageRow(ts, f"r{ts}", client, account if status < 400 else None, "openai-compatibility", model, model,
                    tokens[0] if tokens else None, tokens[1] if tokens else None, 0 if tokens else None,
                    None, status, 12.5, None, status >= 400)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_rows_survive_close_group_and_expire(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    ops = settings(kind, tmp_path, request, flush_interval=3600.0, retention_days=30)
    now = time.time()
    store = UsageStore(ops)
    await store.start()
    store.add(row(now - 40 * DAY, "old", "m1", (1, 1)))  # beyond retention: pruned at the next start
    store.add(row(now - 2 * DAY, "team-a", "m1", (10, 5)))
    store.add(row(now - 60, "team-a", "m2", (7, 3)))
    store.add(row(now - 30, "clie…3456", "m1", None))  # no usage reported: unknown, not zero
    store.add(row(now - 10, "clie…3456", "m1", None, status=429))
    await store.close()  # the flush interval never passed: close writes the batch

    store = UsageStore(ops)
    await store.start()
    try:
        db = store.db
        everything = await db.grouped(make_query())
        assert everything[0]["requests"] == 4 and everything[0]["failed"] == 1  # the 40-day-old row is gone
        by_key = {r["key"]: r for r in await db.grouped(make_query(group="key"))}
        assert by_key["team-a"]["input_tokens"] == 17 and by_key["team-a"]["output_tokens"] == 8
        assert by_key["clie…3456"]["unreported"] == 2 and by_key["clie…3456"]["input_tokens"] == 0
        recent = await db.grouped(make_query(since="1d", group="key,model"))
        assert [(r["key"], r["model"], r["requests"]) for r in recent] == [
            ("clie…3456", "m1", 2), ("team-a", "m2", 1)]
        days = await db.grouped(make_query(group="day"))
        assert sum(r["requests"] for r in days) == 4 and len(days) == 2
        hours = await db.grouped(make_query(since="1h", group="hour"))
        assert sum(r["requests"] for r in hours) == 3 and all(len(r["hour"]) == 13 for r in hours)
        served = await tables(db, make_query())
        assert served["by_key"]["clie…3456"]["requests"] == 1  # the refused request was not served
        assert served["by_model"]["m1"]["requests"] == 2
        report = await cliproxy_usage(db, make_query())
        usage = report["usage"]
        assert usage["total_requests"] == 4 and usage["failure_count"] == 1 == report["failed_requests"]
        assert usage["apis"]["team-a"]["models"]["m2"]["total_tokens"] == 10
        assert usage["total_tokens"] == 25 and sum(usage["requests_by_day"].values()) == 4
        details = usage["apis"]["team-a"]["models"]["m1"]["details"]
        assert details[0]["tokens"]["input_tokens"] == 10 and details[0]["failed"] is False
        assert len(await db.rows(make_query(), limit=2, newest_first=True)) == 2
        with pytest.raises(ValueError, match="unknown group"):
            make_query(group="colour")
    finally:
        await store.close()


def router_config(fake: FakeOpenAIChat, **extra: Any) -> dict[str, Any]:
    return {"api-keys": [CLIENT, {"key": NAMED, "name": "team-b"}],
            "remote-management": {"secret-key": MANAGEMENT},
            "openai-compatibility": [{"name": "up", "base-url": f"{fake.base_url}/v1",
                                      "api-key-entries": [{"api-key": KEY}],
                                      "models": [{"name": "gpt-4o-mini", "alias": "counted"}]}], **extra}


def ask(router: RouterProcess, key: str, model: str = "counted") -> int:
    return FRESH.request("POST", f"{router.base_url}/v1/chat/completions",
                         headers={"authorization": f"Bearer {key}"},
                         json={"model": model, "messages": [{"role": "user", "content": "count me"}]}).status


def management(router: RouterProcess, path: str) -> urllib3.BaseHTTPResponse:
    reply = FRESH.request("GET", f"{router.base_url}/v0/management/{path}",
                          headers={"authorization": f"Bearer {MANAGEMENT}"})
    assert reply.status == 200, reply.data
    return reply


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crossroads", "usage", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def test_two_workers_answer_with_the_same_totals(fake: FakeOpenAIChat) -> None:
    fake.push(*[Scenario(delay=0.2)] * 10)  # overlapping requests: both workers serve some
    with RouterProcess(router_config(fake, usage={"flush-interval": 0.1}), workers=2) as router:
        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(lambda i: ask(router, CLIENT if i % 2 else NAMED), range(10)))
        assert statuses == [200] * 10
        assert ask(router, CLIENT, "missing") == 404
        time.sleep(0.5)  # every worker's batch is written
        reports = [management(router, "usage").json() for _ in range(6)]
        for report in reports:
            assert report["by_model"]["counted"]["requests"] == 10 and report["scope"] == "replica"
            assert report["by_key"]["team-b"]["requests"] == 5
            assert report["usage"]["total_requests"] == 11 and report["failed_requests"] == 1
            assert report["usage"]["apis"]["team-b"]["models"]["counted"]["total_requests"] == 5
        assert all(r["by_key"] == reports[0]["by_key"] for r in reports)
        assert CLIENT not in json.dumps(reports[0]) and NAMED not in json.dumps(reports[0])
        grouped = management(router, "usage?group=model&since=1h").json()
        assert {r["model"]: r["requests"] for r in grouped["rows"]} == {"counted": 10, "missing": 1}
        exported = list(csv.DictReader(io.StringIO(management(router, "usage/export?format=csv").data.decode())))
        assert len(exported) == 11 and {r["client"] for r in exported} == {"team-b", "usag…3456"}
        assert all(r["request_id"] for r in exported)
        export = management(router, "usage/export").json()
        assert export["version"] == 1 and export["usage"]["total_requests"] == 11
        bad = FRESH.request("GET", f"{router.base_url}/v0/management/usage?since=yesterday-ish",
                            headers={"authorization": f"Bearer {MANAGEMENT}"})
        assert bad.status == 400 and "not a time" in bad.json()["error"]["message"]


def test_a_clean_shutdown_loses_nothing_and_the_cli_reads_it(fake: FakeOpenAIChat) -> None:
    router = RouterProcess(router_config(fake, usage={"flush-interval": 3600}))
    with router:
        for i in range(3):
            assert ask(router, NAMED if i else CLIENT) == 200
        router.stop()  # SIGINT: the last batch is written on the way out
        out = cli("--config", str(router.config_path), "--group", "key", "--format", "json")
        assert out.returncode == 0, out.stderr
        assert {r["key"]: r["requests"] for r in json.loads(out.stdout)} == {"team-b": 2, "usag…3456": 1}
        table = cli("--config", str(router.config_path), "--group", "model,day")
        assert table.returncode == 0 and "counted" in table.stdout
        rows = cli("--config", str(router.config_path), "--export", "--format", "csv").stdout.splitlines()
        assert rows[0].startswith("ts,request_id,client") and len(rows) == 4
        bad = cli("--config", str(router.config_path), "--since", "whenever")
        assert bad.returncode == 2 and "not a time" in bad.stderr and "Traceback" not in bad.stderr


def test_postgres_usage_is_shared_by_replicas(fake: FakeOpenAIChat, postgres: Postgres) -> None:
    usage = {"database": "postgres", "dsn": postgres.dsn, "schema": f"replicas{os.getpid()}",
             "flush-interval": 0.1}
    with RouterProcess(router_config(fake, usage=usage)) as a, RouterProcess(router_config(fake, usage=usage)) as b:
        for router in (a, b, b):
            assert ask(router, NAMED) == 200
        time.sleep(0.4)
        for router in (a, b):
            report = management(router, "usage").json()
            assert report["scope"] == "shared" and report["by_key"]["team-b"]["requests"] == 3
        out = cli("--config", str(a.config_path), "--format", "json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)[0]["requests"] == 3


def test_an_unusable_database_fails_no_request(fake: FakeOpenAIChat, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database's folder should be")
    with RouterProcess(router_config(fake, usage={"path": str(blocker / "usage.sqlite3")})) as router:
        assert ask(router, CLIENT) == 200
        reply = FRESH.request("GET", f"{router.base_url}/v0/management/usage",
                              headers={"authorization": f"Bearer {MANAGEMENT}"})
        assert reply.status == 503 and "could not be opened" in reply.json()["error"]["message"]
        assert "usage: cannot open the database" in router.log()
