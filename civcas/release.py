"""The data's release number, from CHANGELOG.md (its newest `## <release>` heading)."""
from __future__ import annotations

import re
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"
HEADING = re.compile(r"^## (\S+)", re.MULTILINE)


def current_release(changelog: Path = CHANGELOG) -> str | None:
    try:
        match = HEADING.search(changelog.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return match[1] if match else None
