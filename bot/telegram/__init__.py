"""The Telegram side of the bot: the typed context, routes, the command catalogue, button data, delivery and the
handlers. The services below never import from here.
"""
