"""Files through the local Bot API server: photos, documents and voice messages the bot sends, checked as Telegram
checks them (sizes, a real image within Telegram's sides and ratio, OGG Opus for a voice), and getFile."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from bot.sandbox.protocol import (
    MAX_FILE_BYTES,
    MAX_PHOTO_BYTES,
    MAX_PHOTO_RATIO,
    MAX_PHOTO_SIDES,
    File,
    JSONDict,
    bad,
    checked_text,
    image_size,
    is_ogg_opus,
)


class Media:
    """The Bot API's file methods; mixed into ``FakeTelegram``, whose state they share."""

    _serial: int
    _files: dict[str, File]

    if TYPE_CHECKING:  # what the server does for them: find the chat, store a sent message

        def _chat(self, p: JSONDict) -> JSONDict: ...

        def _send(self, chat: JSONDict, p: JSONDict, content: JSONDict) -> JSONDict: ...

    def file_content(self, file_id: str) -> bytes:
        """What a stored file holds (a photo, a voice message or a document the bot sent, or one a person did)."""
        return self._files[file_id].content

    def _store(self, upload: File, folder: str) -> File:
        self._serial += 1
        path = f"{folder}/file_{self._serial}{PurePosixPath(upload.name).suffix}"
        stored = File(upload.name, upload.content, upload.mime_type, f"BQAC{folder[:3]}{self._serial:06d}", path)
        self._files[stored.file_id] = stored
        return stored

    def _media(self, p: JSONDict, key: str, folder: str) -> File:
        if isinstance(value := p.get(key), File):
            return self._store(value, folder)
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        raise bad(f"there is no {key} in the request" if value is None else "wrong file identifier/HTTP URL specified")

    def _m_sendPhoto(self, p: JSONDict) -> JSONDict:
        chat, caption = self._chat(p), checked_text(p, "caption") if "caption" in p else {}
        upload = p.get("photo")
        if isinstance(upload, File):  # checked before it is stored, as Telegram refuses it whole
            if len(upload.content) > MAX_PHOTO_BYTES:
                raise bad("file is too big")
            dimensions = image_size(upload.content)
            if dimensions is None:
                raise bad("IMAGE_PROCESS_FAILED")
            width, height = dimensions
            if width + height > MAX_PHOTO_SIDES or max(width, height) > MAX_PHOTO_RATIO * max(1, min(width, height)):
                raise bad("PHOTO_INVALID_DIMENSIONS")
        stored = self._media(p, "photo", "photos")
        width, height = image_size(stored.content) or (0, 0)
        size = {"file_id": stored.file_id, "file_unique_id": f"u{stored.file_id}", "file_size": len(stored.content),
                "width": width, "height": height}  # fmt: skip
        return self._send(chat, p, {"photo": [size], **caption})

    def _m_sendDocument(self, p: JSONDict) -> JSONDict:
        chat, caption = self._chat(p), checked_text(p, "caption") if "caption" in p else {}
        if isinstance(upload := p.get("document"), File) and len(upload.content) > MAX_FILE_BYTES:
            raise bad("file is too big")
        return self._send(chat, p, {"document": self._media(p, "document", "documents").as_document(), **caption})

    def _m_sendVoice(self, p: JSONDict) -> JSONDict:
        """A voice message: an OGG file of Opus audio (anything else Telegram would not show as one)."""
        chat, caption = self._chat(p), checked_text(p, "caption") if "caption" in p else {}
        if isinstance(upload := p.get("voice"), File):
            if len(upload.content) > MAX_FILE_BYTES:
                raise bad("file is too big")
            if not is_ogg_opus(upload.content):
                raise bad("VOICE_FORMAT_INVALID: a voice message must be an OGG file encoded with Opus")
        stored = self._media(p, "voice", "voice")
        voice = {"file_id": stored.file_id, "file_unique_id": f"u{stored.file_id}", "file_size": len(stored.content),
                 "duration": int(p.get("duration") or 0), "mime_type": "audio/ogg"}  # fmt: skip
        return self._send(chat, p, {"voice": voice, **caption})

    def _m_getFile(self, p: JSONDict) -> JSONDict:
        if (stored := self._files.get(str(p.get("file_id", "")))) is None:
            raise bad("invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": f"u{stored.file_id}", "file_size": len(stored.content),
                "file_path": stored.path}  # fmt: skip
