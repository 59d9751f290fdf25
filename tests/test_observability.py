"""Metrics at /metrics, JSON logs with request ids and masked secrets, and data freshness."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from bot.logging_setup import configure_logging
from bot.metrics import Metrics
from bot.pipeline import Answer, Assistant
from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.demo_store import demo_fixtures, fake_slack_fixture
from tests.fake_anthropic import FakeAnthropic, message, tool_use, usage
from tests.fake_slack import BotServer, FakeSlack, command_body, post, signed

SECRET = "observability-signing-secret"
BOT_TOKEN = "xoxb-1111-2222-abcdefABCDEF"
NOW = datetime(2026, 11, 29, 12, 0)
FORM = "application/x-www-form-urlencoded"
log = logging.getLogger("tests.observability")


demo_file, engine = demo_fixtures("observability")
"""A SQLite store holding 60 days of demo spend ending the day before NOW, a copy per test."""
fake = fake_slack_fixture()


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Whatever `configure_logging` is pointed at here; the root logger is restored after."""
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def slack_settings(fake: FakeSlack, engine: Engine, **extra: Any) -> Settings:
    return Settings(
        database_url=str(engine.url),
        now=NOW,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        slack_api_url=f"{fake.url}/api/",
        **extra,
    )


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def scrape(server: BotServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample at /metrics, keyed by sample name and labels, parsed by prometheus-client."""
    _, headers, body = get(f"{server.url}/metrics")
    assert headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def send_command(server: BotServer, command: str, response_url: str, **headers: str):
    body = command_body(command, response_url)
    return post(
        f"{server.url}/slack/events", body, {**signed(SECRET, body, content_type=FORM), **headers}
    )


# Metrics ----------------------------------------------------------------------------------------


def test_requests_and_skill_runs_are_counted_by_route_status_and_outcome(fake, engine):
    settings = slack_settings(fake, engine)
    with BotServer(build_server(settings, Assistant(settings, engine, load_skills()))) as server:
        assert get(f"{server.url}/healthz")[0] == 200
        assert send_command(server, "spend last month", f"{fake.url}/response/1").status == 200
        fake.wait_for("/response/")
        forged = command_body("spend last month", f"{fake.url}/response/2")
        headers = signed("not-the-secret", forged, content_type=FORM)
        assert post(f"{server.url}/slack/events", forged, headers).status == 401
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(f"{server.url}/wp-admin/setup.php")
        assert missing.value.code == 404
        samples = scrape(server)

    requests = "spendbot_http_requests_total"
    assert value(samples, requests, method="GET", route="/healthz", status="200") == 1
    assert value(samples, requests, method="POST", route="/slack/events", status="200") == 1
    assert value(samples, requests, method="POST", route="/slack/events", status="401") == 1
    # Unknown paths share one label, so probes for random URLs cannot grow the label set.
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    # The scrape itself is counted once it has been answered, so it is not in its own figures.
    assert not any(dict(labels).get("route") == "/metrics" for _, labels in samples)
    assert value(samples, "spendbot_http_request_duration_seconds_count", route="/healthz") == 1
    skill_runs = {
        dict(labels)["skill"]: (dict(labels)["outcome"], count)
        for (name, labels), count in samples.items()
        if name == "spendbot_skill_duration_seconds_count"
    }
    assert skill_runs == {"spend_query": ("ok", 1)}
    assert not any(name == "spendbot_errors_total" for name, _ in samples)


def test_llm_usage_incidents_and_reported_runs_reach_the_metrics(engine, monkeypatch):
    reported = [usage(1000, 200, cache_write=3000), usage(500, 50, cache_read=3000)]
    with FakeAnthropic() as anthropic:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic.base_url)
        anthropic.script = [
            message(tool_use("spend_query", {"period": "last month"}, "tu_1"), usage_=reported[0]),
            message("Done.", usage_=reported[1]),
        ]
        settings = Settings(
            database_url=str(engine.url), now=NOW, ANTHROPIC_API_KEY="sk-test-not-real"
        )
        assistant = Assistant(settings, engine, load_skills())
        metrics = Metrics()
        with BotServer(build_server(settings, assistant, metrics=metrics)) as server:
            assistant.ask("what did we spend last month?", "slack:U1")
            assert anthropic.problems == []
            skill = assistant.registry.get("spend_query")

            def broken(*_: Any) -> Any:
                raise RuntimeError("boom")

            failing = dataclasses.replace(skill, handler=broken)
            assert "incident" in assistant.execute(failing, {}, "slack:U1").data
            metrics.scheduler_run("digest", "ok")
            metrics.scheduler_run("digest", "ok")
            metrics.scheduler_run("anomaly_scan", "failed")
            metrics.ingest_rows("openai", 120)
            metrics.ingest_rows("openai", 30)
            samples = scrape(server)

    model = "claude-sonnet-5-5"
    tokens = "spendbot_llm_tokens_total"
    assert value(samples, tokens, model=model, kind="input_tokens") == 1500
    assert value(samples, tokens, model=model, kind="output_tokens") == 250
    assert value(samples, tokens, model=model, kind="cache_creation_input_tokens") == 3000
    assert value(samples, tokens, model=model, kind="cache_read_input_tokens") == 3000
    # Sonnet 5.5 list prices, USD per million: 2 input, 10 output, 2.50 cache write, 0.20 read.
    expected_cost = (1500 * 2.00 + 250 * 10.00 + 3000 * 2.50 + 3000 * 0.20) / 1e6
    assert value(samples, "spendbot_llm_cost_usd_total", model=model) == pytest.approx(
        expected_cost
    )
    count = "spendbot_skill_duration_seconds_count"
    assert value(samples, count, skill="spend_query", outcome="ok") == 1
    assert value(samples, count, skill="spend_query", outcome="incident") == 1
    runs = "spendbot_scheduler_runs_total"
    assert value(samples, runs, job="digest", outcome="ok") == 2
    assert value(samples, runs, job="anomaly_scan", outcome="failed") == 1
    assert value(samples, "spendbot_ingest_rows_total", source="openai") == 150
    assert value(samples, "spendbot_errors_total", where="skill") == 1
    assert value(samples, "spendbot_errors_total", where="scheduler") == 1


def test_two_servers_in_one_process_keep_separate_metrics(engine):
    settings = Settings(database_url=str(engine.url), now=NOW)
    first, second = Metrics(), Metrics()
    with (
        BotServer(
            build_server(settings, Assistant(settings, engine, load_skills()), metrics=first)
        ) as one,
        BotServer(
            build_server(settings, Assistant(settings, engine, load_skills()), metrics=second)
        ) as two,
    ):
        for _ in range(3):
            get(f"{one.url}/healthz")
        get(f"{two.url}/healthz")
        healthz = {"method": "GET", "route": "/healthz", "status": "200"}
        assert value(scrape(one), "spendbot_http_requests_total", **healthz) == 3
        assert value(scrape(two), "spendbot_http_requests_total", **healthz) == 1


# Logs -------------------------------------------------------------------------------------------


def test_secrets_and_token_shaped_strings_are_masked(captured_logs, tmp_path):
    settings = Settings(
        database_url="postgresql://spendbot:db-pass-7788@db.internal:5432/spendbot",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        OPENAI_ADMIN_KEY="admin-key-not-token-shaped-123",
        agent_tokens="agent-one-1111, agent-two-2222",
    )
    configure_logging(settings, "json", captured_logs)
    stray = "sk-ant-admin01-QWERTYuiop1234567890"  # in no setting: masked by its shape
    log.info("posting with %s and %s", BOT_TOKEN, SECRET)
    log.warning("key %s, stray %s", "admin-key-not-token-shaped-123", stray)
    log.info("agent %s pushed", "agent-two-2222")
    try:
        raise RuntimeError(f"could not connect to {settings.database_url}")
    except RuntimeError:
        log.exception("database down")

    output = captured_logs.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    secrets = (BOT_TOKEN, SECRET, "db-pass-7788", "admin-key-not-token-shaped-123", stray)
    for secret in (*secrets, "agent-one-1111", "agent-two-2222"):
        assert secret not in output
    assert [line["message"] for line in lines] == [
        "posting with *** and ***",
        "key ***, stray sk-***",
        "agent *** pushed",
        "database down",
    ]
    assert "postgresql://spendbot:***@db.internal" in lines[3]["exception"]
    assert [line["level"] for line in lines] == ["INFO", "WARNING", "INFO", "ERROR"]
    assert {line["logger"] for line in lines} == {"tests.observability"}
    assert all(line["request_id"] == "-" for line in lines)


class LoggingAssistant(Assistant):
    """Logs each question, the way any code reached from a request logs."""

    def ask(self, text: str, user: str, **kwargs: Any) -> Answer:
        log.info("asked %r by %s", text, user)
        return super().ask(text, user, **kwargs)


def test_records_logged_while_handling_a_request_carry_its_id(fake, engine, captured_logs):
    settings = slack_settings(fake, engine)
    configure_logging(settings, "json", captured_logs)
    assistant = LoggingAssistant(settings, engine, load_skills())
    with BotServer(build_server(settings, assistant)) as server:
        send_command(server, "last month", f"{fake.url}/response/1", **{"X-Request-Id": "req-42"})
        send_command(server, "top 5 services", f"{fake.url}/response/2")
        fake.wait_for("/response/", 2)
        _, headers, _ = get(f"{server.url}/healthz", **{"X-Request-Id": "probe-7"})
    log.info("after the server stopped")

    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    asked = {line["message"]: line["request_id"] for line in lines if "asked" in line["message"]}
    assert asked["asked 'last month' by slack:U100"] == "req-42"
    generated = asked["asked 'top 5 services' by slack:U100"]
    assert generated not in ("-", "req-42", None)
    assert headers["X-Request-Id"] == "probe-7"
    assert lines[-1]["message"] == "after the server stopped" and lines[-1]["request_id"] == "-"
    assert BOT_TOKEN not in captured_logs.getvalue()


# Freshness --------------------------------------------------------------------------------------


def test_healthz_reports_freshness_per_provider(engine):
    with engine.connect() as connection:
        expected = {
            provider: {
                "loaded_at": datetime.fromisoformat(str(loaded)).isoformat(),
                "charge_period_end": datetime.fromisoformat(str(end)).isoformat(),
            }
            for provider, loaded, end in connection.execute(
                text(
                    "SELECT s.provider_name, max(s.loaded_at), max(c.charge_period_end) "
                    "FROM ingest_slices s JOIN cost_line_items c ON c.slice_id = s.id "
                    "GROUP BY s.provider_name"
                )
            )
        }
    assert len(expected) >= 3
    settings = Settings(database_url=str(engine.url), now=NOW)
    with BotServer(build_server(settings, Assistant(settings, engine, load_skills()))) as server:
        status, _, body = get(f"{server.url}/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok"
    assert health["freshness"] == expected
    assert {end["charge_period_end"] for end in expected.values()} == {"2026-11-29T00:00:00"}


def test_healthz_freshness_of_an_empty_store_is_empty(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'empty.db'}")
    settings = Settings(database_url=str(engine.url), now=NOW)
    with BotServer(build_server(settings, Assistant(settings, engine, load_skills()))) as server:
        health = json.loads(get(f"{server.url}/healthz")[2])
    engine.dispose()
    assert health["status"] == "ok" and health["freshness"] == {}


def test_serve_logs_json_lines_by_default_when_not_on_a_terminal(
    captured_logs, monkeypatch, tmp_path
):
    from typer.testing import CliRunner

    import bot.server
    from bot.cli import app

    def fake_serve(settings: Settings, *_: Any) -> None:
        logging.getLogger("bot.server").info(
            "token is %s", settings.slack_bot_token.get_secret_value()
        )

    monkeypatch.setattr(bot.server, "serve", fake_serve)
    env = {
        "SPENDBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
    }
    as_json = CliRunner().invoke(app, ["serve"], env=env)
    as_text = CliRunner().invoke(app, ["serve", "--log-format", "text"], env=env)

    assert as_json.exit_code == 0 and as_text.exit_code == 0
    lines = [json.loads(row) for row in as_json.stderr.splitlines() if row.startswith("{")]
    assert {"logger": "bot.server", "message": "token is ***"}.items() <= lines[-1].items()
    assert "INFO bot.server [-]: token is ***" in as_text.stderr
    assert BOT_TOKEN not in as_json.stderr + as_text.stderr


def test_freshness_is_the_newest_load_and_charge_end_per_provider(database_url):
    from storage.freshness import data_freshness

    engine = open_database(database_url)
    frame = generate_demo_focus(date(2026, 11, 10), days=20)
    ingest_frame(engine, frame, "demo data")
    # A later, smaller load of one provider: only its own freshness moves.
    later = generate_demo_focus(date(2026, 11, 20), days=3)
    aws = later[later["ProviderName"] == "AWS"]
    ingest_frame(engine, aws, "aws only")
    with engine.connect() as connection:
        loads = dict(
            connection.execute(
                text("SELECT provider_name, max(loaded_at) FROM ingest_slices GROUP BY 1")
            ).all()
        )
    freshness = data_freshness(engine)
    engine.dispose()

    ends = pd.concat([frame, aws]).groupby("ProviderName")["ChargePeriodEnd"].max()
    assert set(freshness) == set(ends.index) == set(loads)
    for provider, fresh in freshness.items():
        assert fresh.charge_period_end == pd.Timestamp(ends[provider]).to_pydatetime()
        assert fresh.loaded_at == datetime.fromisoformat(str(loads[provider]))
    assert freshness["AWS"].charge_period_end == datetime(2026, 11, 21)
    assert freshness["AWS"].loaded_at > max(
        fresh.loaded_at for provider, fresh in freshness.items() if provider != "AWS"
    )
