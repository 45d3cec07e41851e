"""The terminal of the sandbox chat: lines typed come in while the bot's answers go out, neither waiting for the other.

Reading a line blocks, so it happens in a thread of its own that reads ahead: a person can type the next line
while the bot is still writing, and the lines are taken in the order typed. The thread is a daemon, so a
prompt still waiting for input never keeps the process from exiting. What the chat prints while a person
types goes above the prompt, which is then drawn again with what they had typed so far (on a terminal;
a script's piped input gets plain lines and no prompts).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import termios
import threading
from typing import Any, TextIO

PROMPT = "you> "
QUIT = frozenset({"/quit", "/exit"})  # the lines that end the chat: no prompt after them


class Console:
    """Lines from ``stdin`` as they are typed; ``show`` prints above the prompt."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = self.stdin.isatty() and self.stdout.isatty()
        self._lines: asyncio.Queue[str | None] | None = None
        self._prompting = False  # the reading thread shows the prompt and waits in input()
        self._terminal: list[Any] | None = None  # the terminal's modes before readline changed them

    def start(self) -> None:
        """Start reading, from inside the event loop the lines are for."""
        if self.interactive:
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401  (input() then edits lines and keeps a history)
            with contextlib.suppress(termios.error):
                self._terminal = termios.tcgetattr(self.stdin.fileno())
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._lines = lines

        def read_all() -> None:
            line: str | None = ""
            while line is not None:
                line = self._read_one()
                try:
                    loop.call_soon_threadsafe(lines.put_nowait, line)
                except RuntimeError:  # the chat ended (its loop is closed): nobody reads any more
                    return
                if line is not None and line.strip() in QUIT:
                    return

        threading.Thread(target=read_all, name="sandbox-stdin", daemon=True).start()

    async def read(self) -> str | None:
        """The next line typed, without its newline; None once input has ended (Ctrl-D, or the script's end)."""
        if self._lines is None:
            self.start()
        assert self._lines is not None
        return await self._lines.get()

    def close(self) -> None:
        """Give the terminal back as it was: a prompt left waiting in the thread may hold it in readline's modes."""
        if self._terminal is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.stdin.fileno(), termios.TCSADRAIN, self._terminal)

    def show(self, text: str) -> None:
        if not (self.interactive and self._prompting):
            print(text, file=self.stdout, flush=True)
            return
        # Clear the prompt line, print, then draw the prompt again with what was typed so far.
        self.stdout.write(f"\r\033[K{text}\n{PROMPT}{_typed_so_far()}")
        self.stdout.flush()

    def _read_one(self) -> str | None:
        try:
            if self.interactive:
                self._prompting = True
                try:
                    return input(PROMPT)
                finally:
                    self._prompting = False
            line = self.stdin.readline()
            return line.rstrip("\n") if line else None
        except (EOFError, KeyboardInterrupt, OSError, ValueError):  # ValueError: stdin closed under us
            return None


def _typed_so_far() -> str:
    try:
        import readline
    except ImportError:  # no readline on this platform: the prompt comes back empty
        return ""
    return readline.get_line_buffer()
