"""What the bot looks up and sets about itself and its chats on the local Bot API server: its command menus
(setMyCommands, getMyCommands and deleteMyCommands per scope and language, with Telegram's checks on names and
descriptions), a chat (getChat), a person's standing in one (getChatMember), and the bot's status shown in one
(sendChatAction: "typing...")."""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING

from bot.sandbox.protocol import ACTIONS, JSONDict, bad, chat_member


class Menus:
    """Menus, chats and members; mixed into ``FakeTelegram``, whose state they read and keep."""

    _commands: dict[str, list[JSONDict]]
    _users: dict[int, JSONDict]
    _members: dict[tuple[int, int], JSONDict]
    chat_actions: list[tuple[int, str]]

    if TYPE_CHECKING:

        def _chat(self, p: JSONDict) -> JSONDict: ...

    @staticmethod
    def _commands_key(p: JSONDict) -> str:
        return json.dumps([p.get("scope") or {"type": "default"}, p.get("language_code", "")], sort_keys=True)

    def _m_setMyCommands(self, p: JSONDict) -> bool:
        if not isinstance(commands := p.get("commands"), list) or len(commands) > 100:
            raise bad("can't parse commands JSON array")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(p)] = [{k: c[k] for k in ("command", "description")} for c in commands]
        return True

    def _m_getMyCommands(self, p: JSONDict) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._commands_key(p), []))

    def _m_deleteMyCommands(self, p: JSONDict) -> bool:
        self._commands.pop(self._commands_key(p), None)
        return True

    def _m_getChat(self, p: JSONDict) -> JSONDict:
        gifts = dict.fromkeys(("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription",
                               "gifts_from_channels"), False)  # fmt: skip
        return {**self._chat(p), "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}

    def _m_getChatMember(self, p: JSONDict) -> JSONDict:
        """A person's standing in a chat (``set_member``); in a private chat, the person is its member."""
        chat = self._chat(p)
        user_id = p.get("user_id")
        if not isinstance(user_id, int) or user_id not in self._users:
            raise bad("PARTICIPANT_ID_INVALID" if user_id is not None else "user_id is empty")
        if chat["type"] == "private":
            return chat_member(self._users[user_id], "member")
        standing = self._members.get((chat["id"], user_id), {"status": "member", "is_anonymous": False})
        return chat_member(self._users[user_id], standing["status"], standing["is_anonymous"])

    def _m_sendChatAction(self, p: JSONDict) -> bool:
        chat = self._chat(p)
        if p.get("action") not in ACTIONS:
            raise bad("wrong parameter action in request")
        self.chat_actions.append((chat["id"], str(p["action"])))
        return True
