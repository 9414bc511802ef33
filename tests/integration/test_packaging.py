"""A non-editable install carries everything the gateway reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from babel.support import Translations

from outbound.render import available_locales

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(tmp_path: Path) -> Path:
    """Build the project's wheel into ``tmp_path``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("web2chat_gateway-*.whl")
    return wheel


def test_wheel_contains_templates_and_migrations(tmp_path: Path) -> None:
    """The wheel holds the email templates (inside outbound/) and the Alembic migrations."""
    names = set(zipfile.ZipFile(build_wheel(tmp_path)).namelist())
    assert "outbound/templates/base.html" in names
    assert "outbound/templates/ticket_created/body.html" in names
    assert "outbound/templates/state_changed/next_step.jinja" in names
    assert "gateway/store/migrations/env.py" in names
    assert "gateway/store/migrations/versions/0001_initial_schema.py" in names
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)


def test_wheel_carries_the_compiled_catalogs(tmp_path: Path) -> None:
    """Every locale's compiled catalog is in the wheel, and loads from it with the translations in place."""
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        compiled = {n.split("/")[3] for n in archive.namelist() if n.endswith("/LC_MESSAGES/messages.mo")}
        archive.extractall(tmp_path / "site")
    assert {"ar", "de", "es", "fr", "it", "ja", "nl", "pt_BR", "zh_Hans"} == compiled
    folder = tmp_path / "site" / "outbound" / "templates"
    assert {*compiled, "en"} == available_locales(folder)
    german = Translations.load(str(folder / "locale"), ["de"], "messages")
    assert "Gelöst" == german.gettext("Resolved")
