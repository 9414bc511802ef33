"""A non-editable install carries everything the gateway reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_templates_and_migrations(tmp_path: Path) -> None:
    """The wheel holds the email templates (inside outbound/) and the Alembic migrations."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("web2chat_gateway-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "outbound/templates/base.html" in names
    assert "outbound/templates/strings.json" in names
    assert "outbound/templates/ticket_created/en/body.html" in names
    assert "gateway/store/migrations/env.py" in names
    assert "gateway/store/migrations/versions/0001_initial_schema.py" in names
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)
