"""Binding tokens (websocket.py) as a property: whatever is issued, each token binds exactly the
subscriptions and owner it was issued for, once, and never after it expired or was used."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.subscriptions import websocket
from fhir_server.subscriptions.websocket import BindingTokens, TooManyTokens

ids = st.lists(st.text("abcdef0123456789-", min_size=1, max_size=8), min_size=1, max_size=5)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(ids, st.sampled_from(["dr1|", "dr2|940140000385"])), min_size=1, max_size=20),
       st.data())
def test_each_token_binds_once_what_it_was_issued_for(issued: list[tuple[list[str], str]], data: st.DataObject
                                                      ) -> None:
    tokens = BindingTokens()
    made = [(tokens.issue(sids, owner)[0], sids, owner) for sids, owner in issued]
    order = data.draw(st.permutations(made))
    for token, sids, owner in order:
        binding = tokens.consume(token)
        assert binding is not None and list(binding.subscriptions) == sids and binding.owner == owner
        assert tokens.consume(token) is None  # single use
    assert tokens.consume("not-a-token") is None


def test_an_expired_token_binds_nothing() -> None:
    tokens = BindingTokens(seconds=0)
    token, _ = tokens.issue(["s1"], "dr1|")
    assert tokens.consume(token) is None


def test_live_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websocket, "MAX_LIVE_TOKENS", 3)
    tokens = BindingTokens()
    for _ in range(3):
        tokens.issue(["s1"], "dr1|")
    with pytest.raises(TooManyTokens):
        tokens.issue(["s1"], "dr1|")
