"""The Teams half of the ack benchmark (`bench.ack`) at small scale, so it cannot rot unnoticed."""

from __future__ import annotations

from collections import Counter

from bench.ack import measure, serving
from tests.fake_bot_connector import CHANNEL, FakeBotConnector


def test_every_teams_activity_is_acked_with_201_and_answered_exactly_once(tmp_path):
    with serving(["teams"], days=14, folder=tmp_path) as transports:
        teams = transports["teams"]
        result = measure(teams, concurrency=4, rounds=1)
        assert isinstance(teams.fake, FakeBotConnector)
        replies = teams.fake.of("reply", "message")
    # Bot Framework answers a message activity it took (not an invoke) with 201 Created.
    assert result.statuses == Counter({201: 4}) and len(result.latencies) == 4
    assert all(seconds > 0 for seconds in result.latencies)
    # Two warm-up activities (b10000000, b10000001) and b0..b3; each got one card in reply.
    expected = {"b10000000", "b10000001", "b0", "b1", "b2", "b3"}
    assert Counter(call.activity_id for call in replies) == Counter(expected)
    assert all(call.body["attachments"] for call in replies)
    # Even indices are personal chats (one per user), odd ones mentions in the FinOps channel.
    by_id = {call.activity_id: call.conversation for call in replies}
    assert by_id["b0"] == "a:personal-aad-bench-0" and by_id["b2"] == "a:personal-aad-bench-2"
    assert by_id["b1"] == by_id["b3"] == by_id["b10000001"] == CHANNEL
    assert result.answered >= result.sent > 0
