"""One repository module per aggregate; ``bot.db.repository`` re-exports them all for the services.

Every function takes the caller's ``AsyncSession`` and keyword-only arguments, flushes what it changed so
that constraint errors surface there and then, and never commits: the service owns the transaction. Results
are frozen dataclasses copied out of the rows, safe to keep after the session is gone.
"""
