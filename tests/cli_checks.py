"""What the CLI tests check of a failed command: exit 2 and one line."""
from __future__ import annotations


def one_line_error(p) -> str:
    """The only stderr line of a finished subprocess that failed as a user
    error: exit code 2, no traceback, one line starting with "error:"."""
    assert p.returncode == 2, (p.returncode, p.stdout[-500:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    return lines[0]
