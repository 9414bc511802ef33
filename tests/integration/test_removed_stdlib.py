"""Every module imports on Python 3.13 and later: the standard-library modules that 3.12 and 3.13 removed
are hidden, and the backports the project declares for 3.13+ stand in for the two it needs (flanker's
``cgi``, through WebOb, and ``imghdr``). A new import of a removed module fails here on any Python."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Standard-library modules removed in Python 3.12 (PEP 632, PEP 594's first wave) and 3.13 (PEP 594).
REMOVED = (
    "asynchat", "asyncore", "distutils", "imp", "smtpd",
    "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap", "msilib", "nis",
    "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib",
)
#: The backport standing in for a removed module: (distribution, its file for the module).
BACKPORTS = {
    "cgi": ("legacy-cgi", "cgi.py"),
    "cgitb": ("legacy-cgi", "cgitb.py"),
    "imghdr": ("standard-imghdr", "imghdr/__init__.py"),
}
#: Run by Alembic only: they need its migration context at import.
SKIPPED = ("gateway.store.migrations.env", "gateway.store.migrations.versions.")

PROBE = """
import importlib, importlib.abc, importlib.machinery, importlib.metadata, importlib.util, pkgutil, sys

removed, backports, skipped = {removed!r}, {backports!r}, {skipped!r}
for name in removed:
    sys.modules.pop(name, None)


class Removed(importlib.abc.MetaPathFinder):
    '''Refuses the removed modules; finds the backports' files instead where the project declares one.'''

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top not in removed:
            return None
        if top in backports:
            dist, file = backports[top]
            location = importlib.metadata.distribution(dist).locate_file(file)
            package = [str(location.parent)] if file.endswith("__init__.py") else None
            if name == top:
                return importlib.util.spec_from_file_location(name, location, submodule_search_locations=package)
            return None  # a submodule: found through the backport package's own path
        raise ModuleNotFoundError(f"{{name}} was removed from the standard library", name=name)


sys.meta_path.insert(0, Removed())
try:
    import telnetlib
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("a removed module was not hidden")
imported = []
for package in ("gateway", "inbound", "outbound"):
    module = importlib.import_module(package)
    imported.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if info.name.startswith(skipped):
            continue
        importlib.import_module(info.name)
        imported.append(info.name)
for name in backports:
    if name in sys.modules:
        assert "site-packages" in (sys.modules[name].__file__ or ""), sys.modules[name].__file__
print(len(imported), sorted(n for n in backports if n in sys.modules))
"""


def test_every_module_imports_with_the_removed_stdlib_modules_hidden() -> None:
    """gateway, inbound and outbound import in full with 3.12/3.13's removed modules refused and the
    declared backports (legacy-cgi, standard-imghdr) in place of cgi and imghdr."""
    probe = PROBE.format(removed=REMOVED, backports=BACKPORTS, skipped=SKIPPED)
    finished = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert 0 == finished.returncode, finished.stderr
    count, used = finished.stdout.split(" ", 1)
    assert int(count) > 80
    assert "['cgi', 'imghdr']" == used.strip()


def test_the_backports_are_declared_for_313_and_later() -> None:
    """pyproject.toml requires each backport the probe uses on Python 3.13 and later."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dist in sorted({dist for dist, _ in BACKPORTS.values()}):
        assert any(
            d.startswith(dist) and "python_version >= '3.13'" in d for d in project["dependencies"]
        ), f"{dist} is not declared for Python 3.13+"
