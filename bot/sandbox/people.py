"""The people and chats on the far side of the local Bot API server, played by the sandbox and the tests.

The sandbox is a product feature: ``make run`` without a token chats with the real bot through the local
server, the terminal chat (``bot.sandbox.terminal``) typing as a person through these methods, and the tests
play people through the same methods. What a person does (writes, edits, presses a button, sends a document)
becomes an update in the server's queue, shaped as Telegram delivers it, privacy mode included. The server
(``bot.sandbox.server.FakeTelegram``) inherits this side and holds the state both share, and the record of
what the bot sent; this module keeps the user side apart from the Bot API's.
"""

from __future__ import annotations

import mimetypes
import time
from typing import TYPE_CHECKING

from bot.sandbox.protocol import (
    ANONYMOUS_ADMIN,
    CHANNEL_BOT,
    COMMAND,
    MEMBER_STATUSES,
    MENTION,
    File,
    JSONDict,
    command_entities,
    public,
)


class People:
    """What the people talking to the bot do; mixed into ``FakeTelegram``."""

    # The state the server keeps (``FakeTelegram.__init__`` creates it), which the people read and add to.
    bot_user: JSONDict
    _users: dict[int, JSONDict]
    _chats: dict[int, JSONDict]
    _messages: dict[int, dict[int, JSONDict]]
    _serial: int
    _open_queries: dict[str, JSONDict]
    _members: dict[tuple[int, int], JSONDict]
    _open_inline: dict[str, JSONDict]
    inline_feedback: bool
    inline_answers: dict[str, JSONDict]
    inline_asked_at: dict[str, float]
    inline_messages: dict[str, JSONDict]

    if TYPE_CHECKING:  # what the server does for them: a message in a chat, an update queued, a file stored

        def _new_message(self, chat: JSONDict, sender: JSONDict, content: JSONDict) -> JSONDict: ...

        def _enqueue(self, body: JSONDict) -> int: ...

        def _store(self, upload: File, folder: str) -> File: ...

    # --- what a person does; each returns the update_id it queued ---
    def add_user(
        self, user_id: int, first_name: str = "Ann", language_code: str | None = "en", username: str | None = None
    ) -> None:
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code,
                "username": username}  # fmt: skip
        self._users[user_id] = {k: v for k, v in user.items() if v is not None}

    def add_chat(self, chat_id: int, type: str = "private", title: str | None = None) -> None:
        """Private chats also appear by themselves when a person first writes to the bot."""
        if type not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"chat type {type!r} is not one of private, group, supergroup, channel")
        if type == "private":
            names = {k: v for k, v in self._user(chat_id).items() if k in ("first_name", "username")}
            self._chats[chat_id] = {"id": chat_id, "type": type, **names}
        else:
            self._chats[chat_id] = {"id": chat_id, "type": type, "title": title or f"Chat {chat_id}"}

    def set_member(self, chat_id: int, user_id: int, status: str, is_anonymous: bool = False) -> None:
        """The person's standing in a group, as ``getChatMember`` reports it: creator, administrator, member,
        left or kicked. Anyone not set is a member (they write there); ``is_anonymous``: an admin who posts as
        the group."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"status {status!r} is not one of {sorted(MEMBER_STATUSES)}")
        self._user(user_id)
        self._members[(chat_id, user_id)] = {"status": status, "is_anonymous": is_anonymous}

    def send_text(self, user_id: int, chat_id: int, text: str, reply_to_message_id: int | None = None) -> int:
        """Returns -1 where privacy mode hides a group message from the bot, as Telegram does."""
        content = {"text": text, **command_entities(text)}
        return self._deliver("message", self._user_message(user_id, chat_id, content, reply_to_message_id))

    def upgrade_group(self, chat_id: int, new_chat_id: int) -> tuple[int, int]:
        """A group becomes a supergroup with a new id, as Telegram announces it: a service message in the old
        chat (``migrate_to_chat_id``) and one in the new (``migrate_from_chat_id``). Bots get both, privacy mode
        or not. Returns the two update ids."""
        old = self._chats[chat_id]
        if old["type"] != "group":
            raise ValueError(f"chat {chat_id} is a {old['type']}; only a basic group is upgraded")
        self._chats[new_chat_id] = {"id": new_chat_id, "type": "supergroup", "title": old.get("title")}
        someone = next(iter(self._users.values()), ANONYMOUS_ADMIN)
        farewell = self._new_message(old, someone, {"migrate_to_chat_id": new_chat_id})
        welcome = self._new_message(self._chats[new_chat_id], someone, {"migrate_from_chat_id": chat_id})
        return self._enqueue({"message": public(farewell)}), self._enqueue({"message": public(welcome)})

    def send_as_chat(self, sender_chat_id: int, chat_id: int, text: str) -> int:
        """A message on behalf of a chat, as Telegram delivers it: an anonymous group admin (``sender_chat``
        is the group, ``from`` the shared GroupAnonymousBot) or a channel (``from`` is Channel_Bot)."""
        sender = self._chats[sender_chat_id]
        anonymous_admin = sender_chat_id == chat_id
        placeholder = ANONYMOUS_ADMIN if anonymous_admin else CHANNEL_BOT
        message = self._new_message(self._chats[chat_id], placeholder, {"text": text, **command_entities(text)})
        message["sender_chat"] = dict(sender)
        return self._deliver("message", message)

    def edit_text(self, user_id: int, chat_id: int, message_id: int, text: str) -> int:
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None or message["from"]["id"] != user_id:
            raise ValueError(f"user {user_id} has no message {message_id} in chat {chat_id} to edit")
        message.pop("entities", None)
        message.update(text=text, edit_date=int(time.time()), **command_entities(text))
        return self._deliver("edited_message", message)

    def press_button(self, user_id: int, chat_id: int, message_id: int, callback_data: str) -> int:
        """Refuses buttons that are not on the message, so a test cannot press what a person could not."""
        message = self._messages.get(chat_id, {}).get(message_id)
        rows = (message or {}).get("reply_markup", {}).get("inline_keyboard", [])
        data = [b.get("callback_data") for row in rows for b in row]
        if message is None or callback_data not in data:
            raise ValueError(f"message {message_id} in chat {chat_id} has no button {callback_data!r}; it has {data}")
        return self._callback(user_id, message, callback_data)

    def forge_callback(self, user_id: int, chat_id: int, message_id: int, callback_data: str) -> int:
        """A callback query with data of the sender's choosing under a message they can see: what a
        modified client can send. Bots must check such data; ``press_button`` only presses real buttons."""
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise ValueError(f"chat {chat_id} has no message {message_id}")
        return self._callback(user_id, message, callback_data)

    def _callback(self, user_id: int, message: JSONDict, callback_data: str) -> int:
        self._serial += 1
        query: JSONDict = {"id": f"{self._serial}{user_id}", "from": dict(self._user(user_id)),
                           "chat_instance": f"ci{message['chat']['id']}", "data": callback_data,
                           "message": public(message)}  # fmt: skip
        self._open_queries[query["id"]] = query
        return self._enqueue({"callback_query": query})

    def send_inline_query(self, user_id: int, query: str, chat_type: str = "sender", offset: str = "") -> str:
        """``@Bot <query>`` typed in a chat of ``chat_type``; returns the inline query's id (not an update id), by
        which ``wait_for_inline_answer`` finds the answer. Telegram cuts queries at 256 characters; the fake does
        not, so tests can send what a modified client could."""
        if chat_type not in ("sender", "private", "group", "supergroup", "channel"):
            raise ValueError(f"chat type {chat_type!r} is not one Telegram sends with an inline query")
        self._serial += 1
        query_id = f"{self._serial}{user_id}"
        inline = {"id": query_id, "from": dict(self._user(user_id)), "query": query, "offset": offset,
                  "chat_type": chat_type}  # fmt: skip
        self._open_inline[query_id] = inline
        self.inline_asked_at[query_id] = time.perf_counter()
        self._enqueue({"inline_query": inline})
        return query_id

    def choose_inline_result(self, user_id: int, query_id: str, result_id: str) -> str | None:
        """The person sends one of the results the bot answered ``query_id`` with; returns the sent message's
        ``inline_message_id``, which Telegram gives only for a result with an inline keyboard (else None).

        A chosen_inline_result update is queued only with ``inline_feedback`` on, as BotFather's setting does.
        """
        answer = self.inline_answers.get(query_id)
        results = {r["id"]: r for r in (answer or {}).get("results", [])}
        if result_id not in results:
            raise ValueError(f"inline query {query_id} was not answered with a result {result_id!r}: {list(results)}")
        result = results[result_id]
        inline_message_id = None
        if "inline_keyboard" in result.get("reply_markup", {}):
            self._serial += 1
            inline_message_id = f"IM{self._serial:08d}"
            content = result.get("input_message_content", {})
            self.inline_messages[inline_message_id] = {
                "inline_message_id": inline_message_id, "from": dict(self._user(user_id)),
                "via_bot": dict(self.bot_user), "text": content.get("message_text", ""),
                "reply_markup": result["reply_markup"],
            }  # fmt: skip
        if self.inline_feedback:
            chosen = {"result_id": result_id, "from": dict(self._user(user_id)),
                      "query": answer["inline_query"]["query"] if answer else ""}  # fmt: skip
            if inline_message_id is not None:
                chosen["inline_message_id"] = inline_message_id
            self._enqueue({"chosen_inline_result": chosen})
        return inline_message_id

    def press_inline_button(self, user_id: int, inline_message_id: str, callback_data: str) -> int:
        """A button under a message sent through inline mode: the callback query has no message, only the id."""
        message = self.inline_messages.get(inline_message_id)
        rows = (message or {}).get("reply_markup", {}).get("inline_keyboard", [])
        data = [b.get("callback_data") for row in rows for b in row]
        if message is None or callback_data not in data:
            raise ValueError(f"inline message {inline_message_id} has no button {callback_data!r}; it has {data}")
        return self.forge_inline_callback(user_id, inline_message_id, callback_data)

    def forge_inline_callback(self, user_id: int, inline_message_id: str, callback_data: str) -> int:
        """Data of the sender's choosing under a message sent through inline mode (a modified client)."""
        self._serial += 1
        query: JSONDict = {"id": f"{self._serial}{user_id}", "from": dict(self._user(user_id)),
                           "chat_instance": f"ci{inline_message_id}", "data": callback_data,
                           "inline_message_id": inline_message_id}  # fmt: skip
        self._open_queries[query["id"]] = query
        return self._enqueue({"callback_query": query})

    def send_document(
        self, user_id: int, chat_id: int, file_name: str, content: bytes, caption: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:  # fmt: skip
        mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        fields: JSONDict = {"document": self._store(File(file_name, content, mime), "documents").as_document()}
        fields.update({"caption": caption} if caption else {})
        return self._deliver("message", self._user_message(user_id, chat_id, fields, reply_to_message_id))

    # --- plumbing ---
    def _user(self, user_id: int) -> JSONDict:
        if user_id not in self._users:
            self.add_user(user_id)
        return self._users[user_id]

    def _user_message(self, user_id: int, chat_id: int, content: JSONDict, reply_to: int | None) -> JSONDict:
        user = self._user(user_id)
        if chat_id not in self._chats:
            if chat_id != user_id:
                raise ValueError(f"chat {chat_id} does not exist: call add_chat() (only private chats are implicit)")
            self.add_chat(chat_id)
        if reply_to is not None:
            if reply_to not in self._messages.get(chat_id, {}):
                raise ValueError(f"chat {chat_id} has no message {reply_to} to reply to")
            content = {**content, "reply_to_message": public(self._messages[chat_id][reply_to], quoted=True)}
        return self._new_message(self._chats[chat_id], user, content)

    def _deliver(self, kind: str, message: JSONDict) -> int:
        """Queues a person's message unless privacy mode (can_read_all_group_messages=False) hides it: in a group
        the bot gets commands (its own or unaddressed), replies to its messages and messages that mention it."""
        if message["chat"]["type"] in ("group", "supergroup"):
            text = message.get("text") or message.get("caption") or ""
            command = COMMAND.match(text)
            mine = self.bot_user["username"].lower()
            addressed = (command and command.group().partition("@")[2].lower() in ("", mine)) or any(
                m.group()[1:].lower() == mine for m in MENTION.finditer(text))
            if not addressed and message.get("reply_to_message", {}).get("from", {}).get("id") != self.bot_user["id"]:
                return -1
        return self._enqueue({kind: public(message)})
