"""Singing lyrics: which lyric a 🎵 press or a /tune means, who may hear it, and the answer or the refusal.

A 🎵 button under a lyric in a chat sings that lyric for anyone in the chat, if the button sits under the
request's own answer (button data can be forged; the lyric of another chat must not leak). Under a message sent
through inline mode there is no chat to answer in: the press is answered with a link that opens a private
chat with the bot, its start payload naming the request with a signature only the bot can make (HMAC of the
request id, keyed by the bot's token), so a typed ``/start tune-17-...`` cannot reveal anyone's lyric. The same
request always gets the same melody (its id seeds the tune). Songs count against the person's rate limit like
lyrics do.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass

from bot.domain import Person, Place, Refused
from bot.services.inline import InlineService
from bot.services.lyrics import LyricsService
from bot.serving.singer import Failed, Singer, SingerBusy, SongAsk, SongFiles
from charrnn.music.sing import METERS, Choices
from charrnn.text.titles import untitled

log = logging.getLogger(__name__)

LINK_PREFIX = "tune-"
# What /tune may say before the words: a key (D, Bb, F#m), a meter (3/4), a tempo (a number of beats a minute).
_KEY, _TEMPO = re.compile(r"[A-G][#b♯♭]?m?"), re.compile(r"(?:♩=?)?(\d{2,3})")
_LINK = re.compile(r"tune-(\d{1,15})-([0-9a-f]{16})")


@dataclass(frozen=True)
class SongRefused(Refused):
    """No song; ``detail`` is the singer's reason (a word too long to sing...), for ``sing_cannot``; ``code`` and
    ``params`` word it in the person's language (``sing_why_<code>``), where there is a code."""

    detail: str = ""
    code: str = ""
    params: tuple[tuple[str, object], ...] = ()


def read_choices(text: str) -> tuple[Choices, str]:
    """``/tune G 3/4 100`` (then the words on the next lines, or none in a reply): the choices of a first line
    made of nothing else, and the rest. A first line with any other word is the lyric's: "A day in the life"
    is not in A. ``SingError`` for a choice out of range (a tempo of 500)."""
    first, _, later = text.partition("\n")
    key = meter = ""
    tempo = 0
    words = first.split()
    for word in words:
        if not key and _KEY.fullmatch(word):
            key = word.replace("♯", "#").replace("♭", "b")
        elif not meter and word in METERS:
            meter = word
        elif not tempo and (match := _TEMPO.fullmatch(word)):
            tempo = int(match.group(1))
        else:
            return Choices(), text
    if not words:
        return Choices(), text
    return Choices(meter=meter, key=key, tempo=tempo), later.strip()


class SongService:
    def __init__(self, lyrics: LyricsService, inline: InlineService, singer: Singer, secret: str) -> None:
        self.lyrics, self.inline, self.singer = lyrics, inline, singer
        self._key = hashlib.sha256(b"lyricbot tune links\0" + secret.encode()).digest()

    async def for_button(self, *, request_id: int, place: Place, button_message_id: int | None) -> SongAsk | None:
        """The lyric under a 🎵 pressed in a chat; None when the button is not that lyric's own."""
        record = await self.lyrics.own_button(request_id, place, button_message_id)
        if record is None or not record.output:
            return None
        title, lyric = untitled(record.output)
        return SongAsk(lyric, title, seed=record.id)

    async def link_for_inline(self, inline_message_id: str) -> str | None:
        """The start payload that sings the lyric of an inline message in a private chat; None if unrecorded."""
        request_id = await self.inline.request_for(inline_message_id)
        return None if request_id is None else f"{LINK_PREFIX}{request_id}-{self._sign(request_id)}"

    async def for_link(self, payload: str) -> SongAsk | None:
        """The lyric a start payload names, if the bot signed it."""
        match = _LINK.fullmatch(payload)
        if match is None or not hmac.compare_digest(match.group(2), self._sign(int(match.group(1)))):
            log.warning("a tune link with a bad signature: %r", payload[:40])
            return None
        record = await self.lyrics.record(int(match.group(1)))
        if record is None or not record.output:
            return None
        title, lyric = untitled(record.output)
        return SongAsk(lyric, title, seed=record.id)

    async def sing(self, ask: SongAsk, person: Person, place: Place) -> SongFiles | SongRefused:
        limited = self.lyrics.limit(person, place)
        if limited is not None:
            return SongRefused(limited.reason, seconds=limited.seconds, tell=limited.tell)
        try:
            result = await self.singer.sing(ask)
        except SingerBusy as busy:
            log.warning("singer busy: %s", busy)
            return SongRefused("sing_busy")
        if isinstance(result, Failed):
            return SongRefused("sing_cannot", detail=result.reason, code=result.code,
                               params=tuple(result.params.items()))
        return result

    def _sign(self, request_id: int) -> str:
        return hmac.new(self._key, str(request_id).encode(), hashlib.sha256).hexdigest()[:16]
