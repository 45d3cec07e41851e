"""lyricbot's Telegram bot (built on charrnn); see the README."""
