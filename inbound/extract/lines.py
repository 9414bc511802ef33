"""Split plain text into what the customer wrote and what they quoted.

The text is read top-down.  The first boundary decides the style of the reply:

* an attribution ("On ... wrote:") or header block followed by ``>`` lines: only that
  block is history; the customer's lines between and below quotes are kept
  (interleaved and bottom-posted answers);
* an attribution, header block or delimiter followed by unquoted text (Outlook, Lotus
  Notes, Gmail's "unquoted" replies): everything from it to the end is history;
* a forward marker ("---------- Forwarded message ---------"): the forward is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from inbound.extract import headers as h
from inbound.extract.model import (
    RULE_DATE_EMAIL_HEADER,
    RULE_FORWARDED_BY,
    RULE_FORWARDED_MESSAGE,
    RULE_GATEWAY_MARKER,
    RULE_LOTUS_NOTES_HEADER,
    RULE_NO_QUOTE,
    RULE_ON_WROTE_HEADER,
    RULE_ORIGINAL_MESSAGE_DELIMITER,
    RULE_OUTLOOK_HEADER_BLOCK,
    RULE_QUOTE_PREFIX,
)

__all__ = ["Split", "split_quoted"]

#: How many lines an attribution may be wrapped over (blank lines included).
MAX_HEADER_LINES: Final = 5
#: How far (lines) a header block may reach: fields, wrapped values and blank lines.
MAX_BLOCK_LINES: Final = 40
#: Wrapped-value lines allowed after one header field (long To: lists wrap a lot).
MAX_FIELD_CONTINUATION: Final = 8
#: A quoted line at least this long may have been wrapped by a client, leaving its end
#: unquoted on the next line.
MIN_WRAPPED_QUOTE_LINE: Final = 50
#: Lines above a header block that may belong to it (Lotus name/date lines, separators).
MAX_LEADING_HEADER_LINES: Final = 5


@dataclass(frozen=True)
class Split:
    """The kept lines, the removed lines and the rule that decided the cut."""

    kept: list[str]
    quoted: list[str]
    rule: str


@dataclass(frozen=True)
class _Boundary:
    start: int
    end: int  # last line of the header itself (inclusive)
    rule: str
    cut: int = 0  # where the header starts inside its first line (reply text before it)


def split_quoted(text: str) -> Split:
    """Split ``text`` (LF line endings) into kept and quoted lines."""
    lines = text.split("\n")
    tail: list[str] = []
    rule = ""
    for idx, line in enumerate(lines):
        if h.is_gateway_marker(line):
            lines, tail, rule = lines[:idx], lines[idx:], RULE_GATEWAY_MARKER
            break
    split = _scan(lines)
    return Split(split.kept, split.quoted + tail, rule or split.rule)


def _scan(lines: list[str]) -> Split:
    n = len(lines)
    quote = [h.is_quote_line(x) for x in lines]
    blank = [h.is_blank(x) for x in lines]
    ends = [
        (x.rstrip().endswith(":") if q else h.may_end_header(x))
        for x, q in zip(lines, quote, strict=True)
    ]
    kept: list[str] = []
    quoted: list[str] = []
    rule = ""
    i = 0
    while i < n:
        if quote[i]:
            if _is_lone_quote(i, quote, blank):
                kept.append(lines[i])
                i += 1
                continue
            end = _quote_block_end(lines, i, quote, blank)
            _pull_attribution(kept, quoted)
            quoted.extend(lines[i:end])
            rule = rule or RULE_QUOTE_PREFIX
            i = end
            continue
        if blank[i]:
            kept.append(lines[i])
            i += 1
            continue
        b = _boundary_at(lines, i, quote, blank, ends)
        if b is None:
            kept.append(lines[i])
            i += 1
            continue
        if b.rule == RULE_OUTLOOK_HEADER_BLOCK and not quoted and all(blank[:i]):
            # A header block with nothing above it heads a pasted or forwarded message
            # (or an empty reply): it is the content, so keep it and read on below.
            kept.extend(lines[i : b.end + 1])
            i = b.end + 1
            continue
        if b.rule == RULE_FORWARDED_MESSAGE:
            kept.extend(lines[i:])
            rule = rule or RULE_FORWARDED_MESSAGE
            break
        if b.cut:
            kept.append(lines[i][: b.cut].rstrip(" \t-"))
        lead = _pull_leading_header_lines(kept) if b.rule != RULE_ON_WROTE_HEADER else []
        if not rule:
            lotus = b.rule == RULE_OUTLOOK_HEADER_BLOCK and _lotus_lead(lead)
            rule = RULE_LOTUS_NOTES_HEADER if lotus else b.rule
        quoted.extend(lead)
        quoted.append(lines[i][b.cut:])
        nxt = b.end + 1
        while nxt < n and blank[nxt]:
            nxt += 1
        if nxt < n and quote[nxt] and b.rule != RULE_FORWARDED_BY:
            end = _quote_block_end(lines, nxt, quote, blank)
            quoted.extend(lines[i + 1 : end])
            i = end
            continue
        quoted.extend(lines[i + 1 :])
        break
    return Split(kept, quoted, rule or RULE_NO_QUOTE)


def _is_lone_quote(i: int, quote: list[bool], blank: list[bool]) -> bool:
    """A single ``>`` line wedged between two text lines is content, not a quote."""
    n = len(quote)
    if i == 0 or i + 1 >= n:
        return False
    return (not quote[i - 1] and not blank[i - 1]
            and not quote[i + 1] and not blank[i + 1])


def _quote_block_end(lines: list[str], i: int, quote: list[bool], blank: list[bool]) -> int:
    """Index after the ``>`` block starting at ``i`` (blank lines and wrap leftovers included)."""
    n = len(lines)
    j = i
    while j < n:
        if quote[j] or blank[j]:
            j += 1
            continue
        run = _wrapped_run(lines, j, quote, blank)
        if run == 0:
            break
        j += run
    # Give back the trailing blank lines only if nothing quoted follows them.
    return j


def _wrapped_run(lines: list[str], j: int, quote: list[bool], blank: list[bool]) -> int:
    """Length of a run of unquoted lines that are really a quoted line wrapped by a client.

    They sit directly between two ``>`` lines and read as a continuation: they start in
    lower case, hold a link fragment, or carry no space at all.
    """
    if j == 0 or not quote[j - 1]:
        return 0
    n = len(lines)
    k = j
    while k < n and k - j < 3 and not quote[k] and not blank[k]:
        k += 1
    if k >= n or not quote[k]:
        return 0
    first = lines[j].strip()
    if not first:
        return 0
    if "http" in first or "://" in first or first.endswith(">") or " " not in first:
        return k - j
    if not first[0].isupper() and len(lines[j - 1].strip()) >= MIN_WRAPPED_QUOTE_LINE:
        return k - j
    return 0


def _boundary_at(
    lines: list[str], i: int, quote: list[bool], blank: list[bool], ends: list[bool]
) -> _Boundary | None:
    line = lines[i]
    if len(line) > h.MAX_HEADER_CHARS:
        return None
    if h.forward_kept_marker(line):
        return _Boundary(i, i, RULE_FORWARDED_MESSAGE)
    if h.original_message_delimiter(line):
        return _Boundary(i, i, RULE_ORIGINAL_MESSAGE_DELIMITER)
    if h.forwarded_by_delimiter(line):
        return _Boundary(i, i, RULE_FORWARDED_BY)
    if h.field_kind(line) is not None:
        end = _header_block_end(lines, i, blank)
        if end is not None:
            return _Boundary(i, end, RULE_OUTLOOK_HEADER_BLOCK)
    if not any(ends[i : i + MAX_HEADER_LINES]):
        return None
    return _attribution_at(lines, i, quote, blank, ends)


def _next_is_quote(k: int, quote: list[bool], blank: list[bool]) -> bool:
    n = len(quote)
    while k < n and blank[k]:
        k += 1
    return k < n and quote[k]


def _attribution_at(
    lines: list[str], i: int, quote: list[bool], blank: list[bool], ends: list[bool]
) -> _Boundary | None:
    n = len(lines)
    first = lines[i]
    cut = h.midline_header_start(first) if ends[i] else -1
    if cut > 0:
        rest = first[cut:]
        kind = h.quote_header_kind(
            rest, multiline=False, first_line=rest,
            followed_by_quote=_next_is_quote(i + 1, quote, blank),
        )
        if kind is not None:
            return _Boundary(i, i, RULE_ON_WROTE_HEADER, cut=cut)
    strong_start = h.starts_like_header(first)
    parts: list[str] = []
    k = i
    while k < n and k - i < MAX_HEADER_LINES:
        if k > i and blank[k]:
            if not strong_start:
                break
            k += 1
            continue
        part = lines[k].lstrip().lstrip(">") if k > i and quote[k] else lines[k]
        parts.append(part.strip())
        joined = " ".join(parts)
        if len(joined) > h.MAX_HEADER_CHARS:
            break
        if ends[k]:
            kind = h.quote_header_kind(
                joined, multiline=k > i, first_line=first,
                followed_by_quote=_next_is_quote(k + 1, quote, blank),
            )
            if kind is not None:
                rule = RULE_ON_WROTE_HEADER if kind == "on_wrote" else RULE_DATE_EMAIL_HEADER
                return _Boundary(i, k, rule)
        if k > i and quote[k]:
            break
        k += 1
    return None


def _header_block_end(lines: list[str], i: int, blank: list[bool]) -> int | None:
    """Last line of an Outlook/Lotus header block starting at ``i``, or None if it is not one."""
    n = len(lines)
    kinds: set[str] = set()
    last = i
    blanks = 0
    cont = 0
    j = i
    while j < n and j - i < MAX_BLOCK_LINES:
        kind = h.field_kind(lines[j])
        if kind is not None:
            kinds.add(kind)
            last, blanks, cont = j, 0, 0
        elif blank[j]:
            blanks += 1
            if blanks > 3:
                break
        elif blanks == 0 and cont < MAX_FIELD_CONTINUATION and j > i:
            cont += 1
            last = j
        else:
            break
        j += 1
    if len(kinds) >= 2 and ("from" in kinds or "to" in kinds):
        return last
    return None


def _pull_leading_header_lines(kept: list[str]) -> list[str]:
    """Move the separator / Lotus name+date lines sitting right above a header block."""
    pos = len(kept)
    taken = 0
    last_taken = ""
    while pos > 0 and taken < MAX_LEADING_HEADER_LINES:
        line = kept[pos - 1]
        if h.is_blank(line):
            pos -= 1
            continue
        if (h.is_delimiter_row(line) or h.original_message_delimiter(line)
                or h.is_lotus_date_line(line) or h.field_kind(line) is not None):
            pos -= 1
            taken += 1
            last_taken = line
            continue
        if (last_taken and (h.is_lotus_date_line(last_taken) or h.field_kind(last_taken))
                and h.is_lotus_name_line(line)):
            pos -= 1
            taken += 1
            last_taken = line
        break
    while pos < len(kept) and h.is_blank(kept[pos]):
        pos += 1
    if taken == 0:
        return []
    lead = kept[pos:]
    del kept[pos:]
    return lead


def _lotus_lead(lead: list[str]) -> bool:
    return any(h.is_lotus_date_line(x) for x in lead)


def _pull_attribution(kept: list[str], quoted: list[str]) -> None:
    """Before a bare ``>`` block, move a "<date> <name> <email>" line left in ``kept``."""
    pos = len(kept)
    while pos > 0 and h.is_blank(kept[pos - 1]) and len(kept) - pos < 2:
        pos -= 1
    if pos == 0:
        return
    line = kept[pos - 1]
    kind = h.quote_header_kind(line, multiline=False, first_line=line, followed_by_quote=True)
    if kind is not None:
        quoted.extend(kept[pos - 1:])
        del kept[pos - 1:]
