"""Telegram handlers, one module per feature: parse the update, call a service, hand the answer to
``bot.telegram.delivery``. They never import each other; what they share lives one level up, in ``bot.telegram``.
"""
