"""Button data both ways (bot.telegram.callbacks): every shape the bot sends comes back as what it was, and data a
client forged is None, never a guess."""

from __future__ import annotations

import pytest

from bot.telegram.callbacks import (
    Again,
    Button,
    InlineMusic,
    InlineRate,
    Music,
    PanelTap,
    PickStyle,
    Rate,
    decode,
    encode,
)

BUTTONS: list[Button] = [Rate(17, 5), Again(17), Music(17), InlineRate(3), InlineMusic(), PickStyle("jay"),
                         PanelTap("t", "0.8"), PanelTap("y", "default"), PanelTap("f", "-"), PanelTap("b", "")]


@pytest.mark.parametrize("button", BUTTONS, ids=[encode(b) for b in BUTTONS])
def test_every_button_comes_back_as_it_was_sent(button: Button) -> None:
    assert decode(encode(button)) == button
    assert len(encode(button).encode()) <= 64  # Telegram's limit on callback data


@pytest.mark.parametrize("data", [None, "", "r:1", "r:1:6", "r:x:5", "a:", "a:-3", "m:1.5", "ir:0", "ir:", "st:",
                                  "s:zz", "s:t:", "s:x:1", "s:b:2", "zz:1", "r:1:5" + "0" * 70])
def test_forged_data_is_nothing(data: str | None) -> None:
    assert decode(data) is None


def test_an_id_no_request_has_still_decodes_and_is_refused_by_the_service() -> None:
    """Whether request 10**30 exists is the database's question (it answers "not yours"), not the codec's."""
    assert decode("r:" + "9" * 30 + ":5") == Rate(int("9" * 30), 5)
    assert decode("a:" + "9" * 30) == Again(int("9" * 30))
