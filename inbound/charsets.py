"""Decode text whatever its charset label says (pure): wrong, missing and unknown labels included.

Mail in the wild mislabels its charset all the time: UTF-8 sent as ``iso-8859-1`` or with no
label, Windows-1252 sent as ``us-ascii``, vendor names Python does not know. The order tried:
UTF-8 first when the label is a Western single-byte one or missing (valid multi-byte UTF-8 is
almost never accidental), then the label (widened to its Windows superset), then UTF-8, then
chardet's guess, then Windows-1252 with replacement characters, which never fails.
"""

from __future__ import annotations

import codecs

import chardet

__all__ = ["decode_text", "fix_8bit_header", "normalise_charset"]

#: Labels seen in mail that Python does not know, or whose superset decodes more real mail.
ALIASES = {
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso_8859-1": "cp1252",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "utf8": "utf-8",
    "x-user-defined": "cp1252",
}
#: Labels that mean "no idea": treated as missing.
UNKNOWN = frozenset({"", "unknown", "unknown-8bit", "x-unknown", "default", "none", "charset", "8bit"})
#: Labels after which UTF-8 is tried first (a Western single-byte label on UTF-8 text is common).
_WESTERN = frozenset({"cp1252", "iso8859-15", "iso-8859-15"})
#: Smallest chardet confidence worth trusting.
MIN_CONFIDENCE = 0.5


def normalise_charset(label: str | None) -> str | None:
    """The codec to try for ``label`` (an alias resolved, a superset chosen), or None if unknown."""
    if label is None:
        return None
    name = label.strip().strip("\"'").lower()
    if name in UNKNOWN:
        return None
    name = ALIASES.get(name, name)
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a label with an embedded NUL
        return None
    return name


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


def decode_text(data: bytes, label: str | None) -> str:
    """``data`` as text, trying the label, UTF-8 and a guess; never raises."""
    if data.isascii():
        return data.decode("ascii")
    codec = normalise_charset(label)
    if codec is None or codec in _WESTERN:
        text = _strict(data, "utf-8")
        if text is not None:
            return text
    for candidate in (codec, "utf-8"):
        if candidate is not None:
            text = _strict(data, candidate)
            if text is not None:
                return text
    guess = chardet.detect(data[:65536])
    encoding = guess.get("encoding")
    if encoding and (guess.get("confidence") or 0) >= MIN_CONFIDENCE and normalise_charset(encoding):
        return data.decode(normalise_charset(encoding) or "cp1252", "replace")
    return data.decode("cp1252", "replace")


def fix_8bit_header(value: str) -> str:
    """A header value read as Latin-1 (raw 8-bit bytes) redecoded as UTF-8 when it is valid UTF-8."""
    if value.isascii() or any(ord(c) > 0xFF for c in value):
        return value
    return _strict(value.encode("latin-1"), "utf-8") or value
