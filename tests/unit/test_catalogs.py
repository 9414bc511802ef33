"""The email catalogs: current with the templates, complete in every locale, compiled as committed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from outbound.render import CATALOGS, DOMAIN, SOURCE_LOCALE, available_locales, find_templates

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = find_templates()
LOCALES = sorted(available_locales(TEMPLATES) - {SOURCE_LOCALE})


def po(locale: str) -> Catalog:
    with (TEMPLATES / CATALOGS / locale / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as f:
        return read_po(f, locale=locale)


def extracted() -> set[str | tuple[str, ...]]:
    """Every message the templates and outbound/render.py use, as pybabel extracts them (babel.cfg)."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: set[str | tuple[str, ...]] = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map):
        found.add(message if isinstance(message, str) else tuple(message[:2]))
    return found


def test_the_template_catalog_is_current() -> None:
    """templates/messages.pot holds exactly what the templates use (run `bash scripts/catalogs` otherwise)."""
    with (TEMPLATES / "messages.pot").open("rb") as f:
        pot = {m.id for m in read_po(f) if m.id}
    assert extracted() == pot


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(locale: str) -> None:
    """Each locale translates every message, every plural form, none fuzzy, with the same placeholders."""
    catalog = po(locale)
    assert get_plural(locale).num_plurals == catalog.num_plurals
    ids = {m.id for m in catalog if m.id}
    assert extracted() == ids, "missing or obsolete messages: run `bash scripts/catalogs` and translate"
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{locale}: untranslated {message.id!r}"
        assert "fuzzy" not in message.flags, f"{locale}: fuzzy {message.id!r}"
        assert isinstance(message.id, tuple) == isinstance(message.string, tuple)
        assert catalog.num_plurals == len(strings) or not isinstance(message.id, tuple)
        assert [] == list(message.check(catalog)), f"{locale}: {message.id!r}"


@pytest.mark.parametrize("locale", LOCALES)
def test_the_compiled_catalog_matches_its_source(locale: str) -> None:
    """The committed .mo is the compiled .po (so what ships is what was reviewed)."""
    with (TEMPLATES / CATALOGS / locale / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as f:
        compiled = read_mo(io.BytesIO(f.read()))
    source = po(locale)
    def table(catalog: Catalog) -> dict[object, object]:
        return {_key(m.id): _key(m.string) for m in catalog if m.id}

    assert table(source) == table(compiled)


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value
