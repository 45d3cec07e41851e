"""/settings: every setting on one message of buttons, edited in place as the person taps.

Whose settings: in a private chat the person's own; in a group the group's, which apply to every ``/write``
there and which only its administrators change (``bot.telegram.permissions``: Telegram's ``getChatMember`` decides,
on every tap). Showing the panel is open to everyone. A tap acts on the chat it was made in, never on one the
data names: a private chat holds only its person, so the data needs no owner, and in a group the
administrator check decides.

Callback data is ``s:<what>[:<value>]``, far below Telegram's 64 bytes: ``s:t:0.8`` (temperature),
``s:l:160`` (length), ``s:r:1`` (rhymes on), ``s:f`` (the form choices), ``s:f:<tune>`` (``s:f:-``: free lines),
``s:y`` (the style choices), ``s:y:<style>``, ``s:b`` (back to the settings) and ``s:x`` (done: the panel keeps its
text and loses its buttons). It comes from the person's
client and can be forged, so a tap counts only under one of our panels, its value is parsed as strictly as a
typed ``/temp`` (a forged ``s:t:nan`` is refused), a style must be one the styles service offers, and a form one
of the tunes the bot knows. Each
button carries the value it sets rather than "next", so a double tap, or a tap on a panel gone stale since
a ``/temp``, sets the same value again and the panel simply shows what is stored; Telegram's "message is not
modified" for an edit that changes nothing is expected then, and ignored.

A style is picked as ``/style`` picks one (``bot.telegram.panels.pick_style``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from bot.domain import Person, Place, Preferences, group_id
from bot.services.preferences import FREE_LINES
from bot.services.styles import StyleChoice
from bot.settings import Settings
from bot.telegram.callbacks import PANEL, PanelTap, button, decode, fits
from bot.telegram.context import Context
from bot.telegram.delivery import reply
from bot.telegram.i18n import t
from bot.telegram.panels import SETTINGS, change_setting, form_name, on_off, pick_style, refuse_foreign, style_title
from bot.telegram.permissions import may_change_chat_settings

log = logging.getLogger(__name__)

TEMPERATURES: Final = (0.5, 0.8, 1.0, 1.3)
LENGTHS: Final = (40, 80, 160, 300, 600)
STYLES_PER_ROW: Final = 2
# The tunes offered as buttons: the most written ci tunes whose form holds (95%+ of their Song ci in the prevailing
# pattern, 临江仙 77%), so the lines a person gets are the tune's. Any other tune is one /write 调名：… away.
FORMS: Final = ("浣溪沙", "鹧鸪天", "菩萨蛮", "西江月", "临江仙", "减字木兰花", "蝶恋花", "点绛唇")
FORMS_PER_ROW: Final = 3
_LOCK: Final = "settings_panel_lock"  # in chat_data: one tap at a time per chat, so the last edit shows the last value


@dataclass(frozen=True)
class Shown:
    """What a panel shows: the settings that apply where it was opened, and the styles to pick from."""

    prefs: Preferences
    style: str
    styles: list[StyleChoice]  # a title None is the default style's, named in the person's language

    def style_title(self, lang: str) -> str:
        choice = next((c for c in self.styles if c.name == self.style), StyleChoice(self.style, self.style, None))
        return style_title(choice, lang)
    group: bool


def presets(settings: Settings) -> tuple[list[float], list[int]]:
    """The temperatures and lengths offered as buttons: the usual ones the bot's limits allow."""
    temperatures = [v for v in TEMPERATURES if settings.allows_temperature(v)]
    lengths = sorted({v for v in LENGTHS if settings.allows_length(v)}
                     | {settings.default_length})
    return temperatures, lengths


def panel_text(lang: str, shown: Shown, with_footer: bool = True) -> str:
    p = shown.prefs
    parts = [
        t(lang, "panel_group" if shown.group else "panel_private"),
        t(lang, "panel_body", temperature=p.temperature, length=p.length, rhyme=on_off(lang, p.rhyme),
          form=form_name(lang, p.form), style=shown.style_title(lang)),
    ]
    if with_footer:
        parts.append(t(lang, "panel_footer"))
    return "\n\n".join(parts)


def _button(text: str, data: str) -> InlineKeyboardButton:
    what, _, value = data.partition(":")
    return button(text, PanelTap(what, value))


def main_keyboard(lang: str, shown: Shown, settings: Settings) -> InlineKeyboardMarkup:
    """Temperatures, lengths, the rhyme switch, the form, the style, and done; the current values ticked."""
    p = shown.prefs
    temperatures, lengths = presets(settings)
    return InlineKeyboardMarkup([
        [_button(("\u2713 " if abs(v - p.temperature) < 1e-9 else "\U0001f321 ") + f"{v:.1f}", f"t:{v:g}")
         for v in temperatures],
        [_button(("\u2713 " if v == p.length else "\U0001f4cf ") + str(v), f"l:{v}") for v in lengths],
        [_button(t(lang, "panel_rhyme", value=on_off(lang, p.rhyme)), f"r:{0 if p.rhyme else 1}")],
        [_button(t(lang, "panel_form", form=form_name(lang, p.form)), "f")],
        [_button(t(lang, "panel_style", style=shown.style_title(lang)), "y")],
        [_button(t(lang, "panel_done"), "x")],
    ])


def forms_keyboard(lang: str, shown: Shown) -> InlineKeyboardMarkup:
    """Free lines, then the tunes of ``FORMS`` (and the chosen one, when it is another), the current one ticked."""
    chosen = shown.prefs.form
    tunes = [*FORMS, *([chosen] if chosen and chosen not in FORMS else [])]
    buttons = [_button(("\u2713 " if not chosen else "") + t(lang, "form_free"), f"f:{FREE_LINES}")]
    buttons += [_button(("\u2713 " if name == chosen else "") + name, f"f:{name}") for name in tunes]
    rows = [buttons[i : i + FORMS_PER_ROW] for i in range(0, len(buttons), FORMS_PER_ROW)]
    return InlineKeyboardMarkup([*rows, [_button(t(lang, "panel_back"), "b")]])


def styles_keyboard(lang: str, shown: Shown) -> InlineKeyboardMarkup:
    buttons = [
        _button(("\u2713 " if o.name == shown.style else "") + style_title(o, lang), f"y:{o.name}")
        for o in shown.styles
        if fits(PanelTap("y", o.name))  # Telegram refuses longer data; style names are far shorter
    ]
    rows = [buttons[i : i + STYLES_PER_ROW] for i in range(0, len(buttons), STYLES_PER_ROW)]
    return InlineKeyboardMarkup([*rows, [_button(t(lang, "panel_back"), "b")]])


async def _shown(context: Context, person: Person, place: Place) -> Shown:
    services = context.services
    return Shown(prefs=await services.preferences.current(person, place),
                 style=await services.styles.current(person, place), styles=await services.styles.available(),
                 group=group_id(place) is not None)


async def open_panel(update: Update, context: Context) -> None:
    """/settings: the settings that apply here, with buttons to change them."""
    lang = context.lang
    shown = await _shown(context, context.person, context.place)
    await reply(update, context, panel_text(lang, shown), markup=main_keyboard(lang, shown, context.services.settings))


async def _answer(query: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    with contextlib.suppress(BadRequest):  # a query answered too late: the change stands all the same
        await query.answer(text, show_alert=alert)


async def _edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" in str(exc).lower():
            return  # a double tap, or a stale panel showing what is already stored
        log.warning("could not update a settings panel: %s", exc)  # deleted meanwhile: the change stands


async def _change(
    update: Update, context: Context, tap: PanelTap, person: Person, place: Place, lang: str
) -> str | None:
    """Apply a value button; its toast, or None when the value is not one a person could set (forged, stale)."""
    if tap.what in SETTINGS:
        setting = SETTINGS[tap.what]
        value = setting.parse(context.services.preferences, tap.value)
        return None if value is None else await change_setting(context, setting, value)
    # A style ("y:<name>"): only one the styles service offers now; the administrator check is done (``tap``).
    chosen = await pick_style(update, context, tap.value, may_change=True)
    return None if isinstance(chosen, str) else t(lang, "style_set", style=style_title(chosen, lang))


async def tap(update: Update, context: Context) -> None:
    """A tap on a settings panel: check it, change the setting, answer with a toast, redraw the panel."""
    query = update.callback_query
    assert query is not None
    if await refuse_foreign(update, context, PANEL):
        return
    person, place, lang = context.person, context.place, context.lang
    action = decode(query.data)
    if not isinstance(action, PanelTap):
        log.warning("refused settings button %r from %s in chat %s: not a panel button", query.data, person.user_id,
                    place.chat_id)
        await _answer(query, t(lang, "panel_stale"), alert=True)
        return
    if not await may_change_chat_settings(context.bot, update):
        log.info("refused a settings change (%r) in chat %s by %s: not an administrator", query.data, place.chat_id,
                 person.user_id)
        await _answer(query, t(lang, "settings_admins_only"), alert=True)
        return
    chat_data = context.chat_data
    lock = chat_data.setdefault(_LOCK, asyncio.Lock()) if chat_data is not None else contextlib.nullcontext()
    async with lock:
        toast: str | None = None
        if action.what in {"t", "l", "r"} or (action.what in {"f", "y"} and action.value):
            toast = await _change(update, context, action, person, place, lang)
            if toast is None:
                log.warning("refused settings button %r from %s in chat %s: not a valid value", query.data,
                            person.user_id, place.chat_id)
                await _answer(query, t(lang, "panel_stale"), alert=True)
                return
        shown = await _shown(context, person, place)
        try:
            if action.what == "y" and not action.value:
                await _edit(query, t(lang, "panel_styles"), styles_keyboard(lang, shown))
            elif action.what == "f" and not action.value:
                await _edit(query, t(lang, "panel_forms"), forms_keyboard(lang, shown))
            elif action.what == "x":
                await _edit(query, panel_text(lang, shown, with_footer=False), None)
            else:
                await _edit(query, panel_text(lang, shown), main_keyboard(lang, shown, context.services.settings))
        finally:  # the panel first, then the toast: the spinner on the button lasts until the panel is redrawn
            await _answer(query, toast)
