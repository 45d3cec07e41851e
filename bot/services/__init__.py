"""Services: what the bot does, independent of Telegram (handlers call these, never the reverse)."""
