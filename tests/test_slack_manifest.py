"""The Slack app manifest asks for exactly what the bot uses: scopes, events, command, URLs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import bot.slack_app

MANIFEST = Path(__file__).parents[1] / "manifests" / "slack-app.yaml"

# Web API methods the bot calls (as slack_sdk names them) and the bot scope each needs.
METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "files_upload_v2": "files:write",
    "usergroups_list": "usergroups:read",
}
EVENT_SCOPES = {"app_mention": "app_mentions:read", "message.im": "im:history"}


def test_manifest_scopes_events_and_urls_match_the_code() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    source = Path(bot.slack_app.__file__).read_text()
    methods = set(re.findall(r"client\.(\w+)\(", source))
    assert methods == set(METHOD_SCOPES), "a new Web API call needs its scope in the manifest"
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(events) == sorted(EVENT_SCOPES)
    assert 'event("app_mention")' in source and 'event("message")' in source
    assert '"im"' in source  # message events are answered in DMs only
    expected = {METHOD_SCOPES[m] for m in methods} | set(EVENT_SCOPES.values()) | {"commands"}
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(expected)
    assert "user" not in manifest["oauth_config"]["scopes"]
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/spend" and 'command("/spend")' in source
    urls = {
        command["url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["settings"]["interactivity"]["request_url"],
    }
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
