"""Running the bot safely: the locks that keep one bot per database and one fine-tune at a time, the scheduler,
and logging that never shows a token."""
