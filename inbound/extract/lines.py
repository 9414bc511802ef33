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

import re
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
    RULE_UNQUOTED_FALLBACK,
)
from inbound.extract.signature import is_client_footer, is_closing

__all__ = ["Split", "split_quoted", "unquoted_text"]

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
#: Longest sign-off or name-block line that may end a quoted message heading the reply.
MAX_SIGN_OFF_CHARS: Final = 40
#: Most name-block lines under the sign-off that ends such a quoted message.
MAX_SIGN_OFF_TAIL: Final = 6
#: How an indented (not ``>``-quoted) message's lines start.
_INDENT: Final = (" ", "\t")
#: Fields no header block starts with.
_NEVER_FIRST_KINDS: Final = frozenset({"cc", "other"})
#: Fields a header block holds at most once.
_ONCE_KINDS: Final = frozenset({"from", "sent", "to", "subject"})
#: Fields that may come before From in one header block (GMX "Gesendet:", Thunderbird's
#: "Subject:", mutt's "Date:").
_MAY_PRECEDE_FROM: Final = frozenset({"sent", "subject"})
#: Characters that end a sentence (a reply line); no wrapped attribution part ends with one.
_SENTENCE_ENDS: Final = frozenset(".!?…。！？")


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
    at = h.find_gateway_marker(text)
    if at >= 0:
        start = text.rfind("\n", 0, at) + 1
        split = _scan(text[: max(start - 1, 0)] if start else "")
        tail = text[start:].split("\n")
        return Split(split.kept, split.quoted + tail, RULE_GATEWAY_MARKER)
    return _scan(text)


def unquoted_text(text: str) -> Split:
    """The message's own unquoted text, for when :func:`split_quoted` leaves nothing.

    Read top-down without joining any line to the ones above it: ``>`` lines are skipped,
    and the first line that on its own opens history (an attribution, a header block, a
    delimiter, the gateway marker) ends the text.  A forward marker does not: a forward is
    content.  What the customer wrote above history is never lost this way, at the price of
    a Lotus name or date line the full rules would have cut.
    """
    lines = text.split("\n")
    marker = h.find_gateway_marker(text)
    stop = text.count("\n", 0, marker) if marker >= 0 else len(lines)
    kept: list[str] = []
    quoted: list[str] = []
    for i in range(stop):
        line = lines[i]
        if _is_quote(line):
            quoted.append(line)
            continue
        b = None if _is_blank(line) else _boundary_at(lines, i, i)
        if b is not None and b.rule != RULE_FORWARDED_MESSAGE:
            if b.cut:
                kept.append(line[: b.cut])
                line = line[b.cut :]
            quoted.append(line)
            quoted.extend(lines[i + 1 :])
            return Split(kept, quoted, RULE_UNQUOTED_FALLBACK)
        kept.append(line)
    quoted.extend(lines[stop:])
    return Split(kept, quoted, RULE_UNQUOTED_FALLBACK)


def _is_quote(line: str) -> bool:
    return line.lstrip(" \t")[:1] == ">"


def _is_blank(line: str) -> bool:
    return not line.strip(h.BLANK_CHARS)


class _Doc:
    """The lines of the text and fast jumps over plain text and quotes."""

    __slots__ = ("_line", "_off", "lines", "n", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.n = len(self.lines)
        # A cursor (line index, offset of its first character), moved forward on demand:
        # no table of every line's offset is built.
        self._line = 0
        self._off = 0

    def next_candidate(self, i: int) -> int:
        """First line >= ``i`` that may be a quote, a delimiter or a header (else ``n``).

        Candidates hold a colon, a ``>`` or a doubled rule character ("--", "__", "==",
        "**"); every header, delimiter and quote line does.  One precompiled search runs in
        C from line ``i``, and the scan only moves forward, so a whole scan stays linear.
        """
        line, off = self._line, self._off
        if i < line:
            line, off = 0, 0
        if i > line:
            off += sum(map(len, self.lines[line:i])) + (i - line)
        text = self.text
        m = _CANDIDATE_RE.search(text, off)
        if m is None:
            self._line, self._off = i, off
            return self.n
        pos = m.start()
        nl = text.rfind("\n", off, pos)
        if nl == -1:
            self._line, self._off = i, off
            return i
        c = i + text.count("\n", off, pos)
        self._line, self._off = c, nl + 1
        return c

    def next_unquoted(self, i: int) -> int:
        """First line >= ``i`` with content that is not ``>``-quoted (else ``n``)."""
        lines = self.lines
        blank = h.BLANK_CHARS
        for j in range(i, self.n):
            line = lines[j]
            # _is_quote / _is_blank inline: this loop runs over every line of a quote block.
            if line[:1] == ">" or line.lstrip(" \t")[:1] == ">" or not line.strip(blank):
                continue
            return j
        return self.n


#: Substrings at least one of which every quote, delimiter and header line contains.
_CANDIDATE_NEEDLES: Final = (":", "：", ">", "--", "__", "==", "**")
_CANDIDATE_RE: Final = re.compile("|".join(re.escape(x) for x in _CANDIDATE_NEEDLES))


def _scan(text: str) -> Split:
    doc = _Doc(text)
    lines, n = doc.lines, doc.n
    kept: list[str] = []
    quoted: list[str] = []
    rule = ""
    run_start = 0  # first line of the current stretch of reply text
    i = 0
    while i < n:
        line = lines[i]
        is_quote = line[:1] == ">" or _is_quote(line)
        b = _wrapped_into_quote(lines, i, run_start) if is_quote else None
        if b is not None:
            pass  # "On <date>, <name>" then "> wrote:": an attribution, handled below
        elif is_quote:
            if _is_lone_quote(lines, i):
                kept.append(line)
                i += 1
                continue
            end = _quote_block_end(doc, i)
            _pull_attribution(kept, quoted)
            quoted.extend(lines[i:end])
            rule = rule or RULE_QUOTE_PREFIX
            i = run_start = end
            continue
        else:
            c = doc.next_candidate(i)
            if c > i:
                kept.extend(lines[i:c])
                i = c
                continue
            if _is_blank(line):
                kept.append(line)
                i += 1
                continue
            b = _boundary_at(lines, i, run_start)
        if b is None:
            kept.append(line)
            i += 1
            continue
        if b.start < i:  # a wrapped attribution whose first lines were taken as text
            del kept[len(kept) - (i - b.start):]
            i = b.start
            line = lines[i]
        if b.rule == RULE_OUTLOOK_HEADER_BLOCK and not quoted and not _has_content(kept):
            # A header block with nothing above it heads a pasted or forwarded message
            # (or an empty reply): it is the content, so keep it and read on below.
            kept.extend(lines[i : b.end + 1])
            i = run_start = b.end + 1
            continue
        if b.rule == RULE_FORWARDED_MESSAGE:
            kept.extend(lines[i:])
            rule = rule or RULE_FORWARDED_MESSAGE
            break
        if b.cut:
            kept.append(line[: b.cut].rstrip(" \t-"))
        lead = _pull_leading_header_lines(kept) if b.rule != RULE_ON_WROTE_HEADER else []
        if not rule:
            lotus = b.rule == RULE_OUTLOOK_HEADER_BLOCK and _lotus_lead(lead)
            rule = RULE_LOTUS_NOTES_HEADER if lotus else b.rule
        quoted.extend(lead)
        quoted.append(line[b.cut:])
        nxt = b.end + 1
        while nxt < n and _is_blank(lines[nxt]):
            nxt += 1
        if nxt < n and _is_quote(lines[nxt]) and b.rule != RULE_FORWARDED_BY:
            end = _quote_block_end(doc, nxt)
            quoted.extend(lines[i + 1 : end])
            i = run_start = end
            continue
        if not b.cut and b.rule != RULE_FORWARDED_BY and not _has_content(kept):
            # Nothing above the history: the customer may have written below it (bottom
            # posting without ">" markers); keep reading after the quoted message's end.
            below = _quoted_message_end(lines, b.end + 1)
            if below is not None:
                quoted.extend(lines[i + 1 : below])
                i = run_start = below
                continue
        quoted.extend(lines[i + 1 :])
        break
    return Split(kept, quoted, rule or RULE_NO_QUOTE)


def _has_content(lines: list[str]) -> bool:
    return any(not _is_blank(x) for x in lines)


def _quoted_message_end(lines: list[str], k: int) -> int | None:
    """Where the text below an unquoted message that heads the reply starts, or None.

    The quoted message ends where its indented block ends (a client or converter that
    indents instead of quoting), or after its sign-off: a closing line with a short name
    block under it, a ``-- `` signature or a client footer, then a blank line.  What follows
    is read like any text (older history there is cut as usual).  None when no such end is
    found: everything below is history.
    """
    n = len(lines)
    f = k
    while f < n and _is_blank(lines[f]):
        f += 1
    if f >= n:
        return None
    if lines[f][:1] in _INDENT:
        e = f
        while e < n and (_is_blank(lines[e]) or lines[e][:1] in _INDENT):
            e += 1
        return e if e < n else None
    for j in range(f, n):
        after = _after_sign_off(lines, j)
        if after is not None:
            return after if after < n else None
    return None


def _after_sign_off(lines: list[str], j: int) -> int | None:
    """If a sign-off (with its name block) ends a message at line ``j``: the next content line."""
    line = lines[j]
    stripped = line.strip()
    if not stripped or len(stripped) > MAX_SIGN_OFF_CHARS:
        return None
    n = len(lines)
    k = j + 1
    if stripped in ("--", "-- ") or is_client_footer(line):
        while k < n and not _is_blank(lines[k]):
            k += 1  # a signature under "-- " runs to the next blank line
    elif is_closing(stripped):
        while k < n and k - j <= MAX_SIGN_OFF_TAIL and _is_name_block_line(lines[k]):
            k += 1
        if k == j + 1 or (k < n and not _is_blank(lines[k])):
            return None  # a closing with no name under it, or a paragraph: no sign-off
    else:
        return None
    while k < n and _is_blank(lines[k]):
        k += 1
    return k if k > j + 1 else None


def _is_name_block_line(line: str) -> bool:
    """A short line of a sign-off's name block (name, title, company), not a sentence."""
    s = line.strip()
    return bool(s) and len(s) <= MAX_SIGN_OFF_CHARS and s[-1] not in ":?" and len(s.split()) <= 5


def _is_lone_quote(lines: list[str], i: int) -> bool:
    """A single ``>`` line wedged between two text lines is content, not a quote."""
    if i == 0 or i + 1 >= len(lines):
        return False
    before, after = lines[i - 1], lines[i + 1]
    return not (_is_quote(before) or _is_blank(before) or _is_quote(after) or _is_blank(after))


def _quote_block_end(doc: _Doc, i: int) -> int:
    """Index after the ``>`` block starting at ``i`` (blank lines and wrap leftovers included)."""
    j = i
    while True:
        j = doc.next_unquoted(j)
        if j >= doc.n:
            return doc.n
        run = _wrapped_run(doc.lines, j)
        if run == 0:
            return j
        j += run


def _wrapped_run(lines: list[str], j: int) -> int:
    """Length of a run of unquoted lines that are really a quoted line wrapped by a client.

    They sit directly between two ``>`` lines and read as a continuation: they hold a
    link fragment or no space at all, or follow a long quoted line without a capital.
    """
    if j == 0 or not _is_quote(lines[j - 1]):
        return 0
    n = len(lines)
    k = j
    while k < n and k - j < 3 and not _is_quote(lines[k]) and not _is_blank(lines[k]):
        k += 1
    if k >= n or not _is_quote(lines[k]):
        return 0
    first = lines[j].strip()
    if not first:
        return 0
    if "http" in first or "://" in first or first.endswith(">") or " " not in first:
        return k - j
    if not first[0].isupper() and len(lines[j - 1].strip()) >= MIN_WRAPPED_QUOTE_LINE:
        return k - j
    return 0


def _ends_header(line: str) -> bool:
    """Can an attribution end on this line?  (It ends with a colon, ``>`` or a dash.)"""
    tail = line.rstrip()[-1:]
    return tail != "" and tail in ":：->"


def _boundary_at(lines: list[str], i: int, run_start: int) -> _Boundary | None:
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
        end = _header_block_end(lines, i)
        if end is not None:
            return _Boundary(i, end, RULE_OUTLOOK_HEADER_BLOCK)
    if not _ends_header(line):
        return None
    # An attribution ending here may have started on one of the lines above.
    lo = max(run_start, i - MAX_HEADER_LINES + 1)
    for start in range(i, lo - 1, -1):
        if start < i and not _may_open_attribution(lines[start]):
            continue
        b = _attribution_at(lines, start, i)
        if b is not None:
            return _widen_attribution(lines, b, lo, i)
    return None


def _may_open_attribution(line: str) -> bool:
    """Can a wrapped attribution start on this line?  ("On"-word or date, or an address.)"""
    return h.starts_like_header(line) or "@" in line or "<" in line


def _widen_attribution(lines: list[str], b: _Boundary, lo: int, last: int) -> _Boundary:
    """Extend the latest attribution found upwards over the lines a client wrapped it from.

    The latest start wins (the reply text right above a wrapped attribution often opens like
    one: "Le colis ...", "El paquete ...", "Am Montag ...", an address).  A line above joins
    only while the attribution does not yet open with an "On"-word or date and a date or
    time, and only if it does not end a sentence: an attribution has one opening line, and
    no wrapped part of it ends with ".".
    """
    while b.cut == 0 and b.start > lo and not h.opens_attribution(lines[b.start]):
        j = b.start - 1
        while j > lo and _is_blank(lines[j]):
            j -= 1  # only an "On"/date opener may stand blank lines above the rest
        above = lines[j]
        if not _may_open_attribution(above) or above.rstrip()[-1:] in _SENTENCE_ENDS:
            break
        wider = _attribution_at(lines, j, last)
        if wider is None or wider.start != j:
            break
        b = wider
    return b


def _wrapped_into_quote(lines: list[str], i: int, run_start: int) -> _Boundary | None:
    """An attribution whose last line ("> wrote:") a client quoted by mistake."""
    if i == run_start or not _ends_header(lines[i]):
        return None
    # The latest opening line wins: the reply text right above may open like one.
    for start in range(i - 1, max(run_start, i - MAX_HEADER_LINES + 1) - 1, -1):
        first = lines[start]
        if _is_quote(first) or not h.starts_like_header(first):
            continue
        b = _attribution_at(lines, start, i)
        if b is not None:
            return b
    return None


def _next_is_quote(lines: list[str], k: int) -> bool:
    n = len(lines)
    while k < n and _is_blank(lines[k]):
        k += 1
    return k < n and _is_quote(lines[k])


def _attribution_at(lines: list[str], i: int, last: int) -> _Boundary | None:
    """An attribution running from line ``i`` to line ``last`` (or a little past it)."""
    n = len(lines)
    first = lines[i]
    strong_start = h.starts_like_header(first)
    if i == last and not strong_start:
        cut = h.midline_header_start(first)
        if cut > 0:
            rest = first[cut:]
            kind = h.quote_header_kind(
                rest, multiline=False, first_line=rest,
                followed_by_quote=_next_is_quote(lines, i + 1),
            )
            if kind is not None:
                return _Boundary(i, i, RULE_ON_WROTE_HEADER, cut=cut)
    parts: list[str] = []
    k = i
    while k < n and k - i < MAX_HEADER_LINES:
        line = lines[k]
        if k > i and _is_blank(line):
            if not strong_start:
                break
            k += 1
            continue
        quoted_line = k > i and _is_quote(line)
        part = line.lstrip().lstrip(">") if quoted_line else line
        parts.append(part.strip())
        joined = " ".join(parts)
        if len(joined) > h.MAX_HEADER_CHARS:
            break
        if k >= last and _ends_header(line):
            kind = h.quote_header_kind(
                joined, multiline=k > i, first_line=first,
                followed_by_quote=_next_is_quote(lines, k + 1),
            )
            if kind is not None:
                rule = RULE_ON_WROTE_HEADER if kind == "on_wrote" else RULE_DATE_EMAIL_HEADER
                return _Boundary(i, k, rule)
        if quoted_line:
            break
        k += 1
    return None


def _header_block_end(lines: list[str], i: int) -> int | None:
    """Last line of an Outlook/Lotus header block starting at ``i``, or None if it is not one."""
    n = len(lines)
    if h.field_kind(lines[i]) in _NEVER_FIRST_KINDS:
        return None  # no client opens a block with Cc: "cc: Bob" above one is the reply's
    kinds: set[str] = set()
    last = i
    blanks = 0
    cont = 0
    j = i
    while j < n and j - i < MAX_BLOCK_LINES:
        kind = h.field_kind(lines[j])
        if kind is not None:
            if kind in kinds and kind in _ONCE_KINDS:
                break  # a second To (or From ...) belongs to the next block
            if kind == "from" and j > i and kinds and "from" not in kinds and not (
                kinds <= _MAY_PRECEDE_FROM
            ):
                # Every client writes From before To and Cc: a To/Cc-like line above a From
                # line is not part of this block ("cc: Bob", a signature's "A: <address>").
                return None
            kinds.add(kind)
            last, blanks, cont = j, 0, 0
        elif _is_blank(lines[j]):
            blanks += 1
            if blanks > 3:
                break
        elif blanks == 0 and cont < MAX_FIELD_CONTINUATION and j > i:
            cont += 1
            last = j
        else:
            break
        j += 1
    kinds.discard("other")
    if len(kinds) < 2 or not ("from" in kinds or "to" in kinds):
        return None
    if len(kinds) >= 3 and "subject" in kinds:
        return last
    # "From: Berlin / To: Paris / Date: 5 May" in a customer's text is not a header: a
    # mail header block carries an address or a date, and a subject or an address.
    block = "\n".join(lines[i : last + 1])
    if not h.looks_like_mail_header(block) or ("subject" not in kinds and "@" not in block):
        return None
    return last


def _pull_leading_header_lines(kept: list[str]) -> list[str]:
    """Move the separator / Lotus name+date lines sitting right above a header block.

    Walking up, in the order clients write them: a field that may open a block (never a
    To or Cc field, which follow From in every client), one Lotus date line, the sender's
    name right above a bare date line ("Sent by:" may sit between them; a date line that
    names its sender, "Jane Doe on 03/04/2001 10:15 AM", has no name line above it), and
    separator rows or framed titles.  Anything else is the customer's: a sign-off name, a
    one-word reply or a "cc: Bob" line right above the block stays in the reply.
    """
    pos = len(kept)
    taken = 0
    stage = _LEAD_FIELDS
    adjacent = False  # the line just taken sits right below (no blank line between)
    while pos > 0 and taken < MAX_LEADING_HEADER_LINES:
        line = kept[pos - 1]
        if h.is_blank(line):
            pos -= 1
            adjacent = False
            continue
        if h.is_delimiter_row(line) or h.is_framed_title(line):
            stage = _LEAD_ROWS
        elif stage == _LEAD_FIELDS and h.field_kind(line) in _LEADING_FIELD_KINDS:
            pass
        elif stage == _LEAD_FIELDS and h.is_lotus_date_line(line):
            stage = _LEAD_NAME if h.is_bare_lotus_date_line(line) else _LEAD_ROWS
        elif stage == _LEAD_NAME and adjacent and h.field_kind(line) == "from":
            pass  # Lotus "Sent by: <name>" between the name and the date
        elif stage == _LEAD_NAME and adjacent and h.is_lotus_name_line(line):
            stage = _LEAD_ROWS
        else:
            break
        pos -= 1
        taken += 1
        adjacent = True
    while pos < len(kept) and h.is_blank(kept[pos]):
        pos += 1
    if taken == 0:
        return []
    lead = kept[pos:]
    del kept[pos:]
    return lead


#: Stages of the walk up from a header block: fields or a date line may come next, then the
#: name above a bare date line, then only separator rows and framed titles.
_LEAD_FIELDS: Final = 0
_LEAD_NAME: Final = 1
_LEAD_ROWS: Final = 2
#: Fields that may sit above the first line of a block (To and Cc never open one).
_LEADING_FIELD_KINDS: Final = frozenset({"from", "sent", "subject"})


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
    if "@" not in line and not h.may_end_header(line):
        return  # an attribution ends with a colon or a verb, or is "<date> <name> <address>"
    kind = h.quote_header_kind(line, multiline=False, first_line=line, followed_by_quote=True)
    if kind is not None:
        quoted.extend(kept[pos - 1:])
        del kept[pos - 1:]
