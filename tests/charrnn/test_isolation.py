import subprocess
import sys


def test_import_charrnn_pulls_in_no_bot_dependencies() -> None:
    """charrnn stands alone: importing all of it must not load the bot's stack."""
    code = (
        "import sys, charrnn, charrnn.cli, charrnn.finetune, charrnn.ngram; "
        "bad = [m for m in ('telegram', 'sqlalchemy', 'apscheduler', 'bot', 'pydantic_settings') if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"charrnn imported {result.stdout.strip()} {result.stderr[-500:]}"
