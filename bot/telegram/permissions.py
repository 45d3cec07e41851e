"""Who may change a chat's settings: anyone in a private chat, only the administrators in a group.

A group's settings (temperature, length, rhyme, style) apply to everyone writing there, so Telegram's own
answer decides: ``getChatMember`` says whether the person is the group's creator or an administrator.
An anonymous administrator speaks as the group itself (``sender_chat`` is the group), which only its
administrators can do. When Telegram cannot be asked, the answer is no: a group's settings are never
changed on a guess.
"""

from __future__ import annotations

import logging

from telegram import Bot, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError

log = logging.getLogger(__name__)

ADMIN_STATUSES = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})


async def may_change_chat_settings(bot: Bot, update: Update) -> bool:
    """True in a private chat; in a group, when the person is one of its administrators."""
    chat = update.effective_chat
    if chat is None:  # an inline query: no chat, the person's own settings
        return True
    if chat.type == ChatType.PRIVATE:
        return True
    message = update.effective_message
    if update.callback_query is None and message is not None and message.sender_chat is not None:
        return message.sender_chat.id == chat.id  # an anonymous admin; a channel speaking in the group is not
    user = update.effective_user
    if user is None:
        return False
    try:
        member = await bot.get_chat_member(chat.id, user.id)
    except TelegramError as exc:
        log.warning("could not ask whether %s administers chat %s: %s; not changing its settings", user.id, chat.id,
                    exc)
        return False
    return member.status in ADMIN_STATUSES
