"""Serving attachments (pure): the n-th attachment of a raw message, types checked against bytes,
download headers, and the sanitised HTML of a reply with its inline images pointing at the API."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from gateway.errors import MalformedMessage
from inbound.attachments import FALLBACK_TYPE, content_disposition, served_type
from inbound.parse import Attachment, attachment_content, parse_email
from inbound.reply_html import reply_html, text_as_html

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
RAW = re.sub(rb"(?<!\r)\n", b"\r\n", (Path(__file__).parent.parent / "corpus" / "inbound" / "attachment.eml")
             .read_bytes())


def test_the_nth_attachment_comes_with_its_bytes_and_the_same_metadata_as_parsing() -> None:
    """attachment_content(raw, n) answers the n-th of ParsedEmail.attachments, with its decoded bytes."""
    listed = parse_email(RAW).attachments
    image, pdf = attachment_content(RAW, 0), attachment_content(RAW, 1)
    assert image is not None and pdf is not None
    assert (listed[0], PNG) == (image.attachment, image.data)
    assert (listed[1], b"%PDF-1.4") == (pdf.attachment, pdf.data[:8])
    assert ("page@photo", True, None, False) == (image.attachment.content_id, image.attachment.inline,
                                                  pdf.attachment.content_id, pdf.attachment.inline)


@pytest.mark.parametrize("n", [2, -1, 99])
def test_no_such_attachment_is_none(n: int) -> None:
    """A position past the last attachment (or negative) is None, not an error."""
    assert None is attachment_content(RAW, n)


def test_an_unparseable_message_is_malformed() -> None:
    """Bytes that are not an email raise MalformedMessage, as parse_email does."""
    with pytest.raises(MalformedMessage):
        attachment_content(b"   ", 0)


@pytest.mark.parametrize(
    ("declared", "data", "expected"),
    [
        ("image/png", PNG, "image/png"),
        ("image/png", b"<html><script>alert(1)</script>", FALLBACK_TYPE),
        ("IMAGE/PNG; name=x.png", PNG, "image/png"),
        ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        ("image/jpg", b"\xff\xd8\xff\xe1", "image/jpeg"),
        ("image/jpeg", PNG, FALLBACK_TYPE),
        ("image/gif", b"GIF89a\x01\x00", "image/gif"),
        ("image/webp", b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        ("image/webp", b"RIFF\x24\x00\x00\x00WAVEfmt ", FALLBACK_TYPE),
        ("application/pdf", b"%PDF-1.7\n", "application/pdf"),
        ("application/zip", b"PK\x03\x04\x14\x00", "application/zip"),
        ("text/plain", "Grüße\r\n\ttab".encode(), "text/plain"),
        ("text/plain", b"MZ\x90\x00\x03\x00", FALLBACK_TYPE),
        ("text/html", b"<p>hello</p>", FALLBACK_TYPE),
        ("image/svg+xml", b"<svg onload=alert(1)>", FALLBACK_TYPE),
        ("application/octet-stream", PNG, FALLBACK_TYPE),
    ],
)
def test_the_declared_type_is_served_only_when_the_bytes_confirm_it(declared: str, data: bytes, expected: str) -> None:
    """A type is repeated only when it is in the magic table and the bytes start as it says; else octet-stream."""
    assert expected == served_type(declared, data)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        ("Überweisung 5%.pdf",
         "attachment; filename=\"_berweisung 5_.pdf\"; filename*=UTF-8''%C3%9Cberweisung%205%25.pdf"),
        ('../../etc/pass"wd', "attachment; filename=\"pass_wd\"; filename*=UTF-8''pass%22wd"),
        ("a\r\nSet-Cookie: x", "attachment; filename=\"aSet-Cookie: x\"; filename*=UTF-8''aSet-Cookie%3A%20x"),
        (None, "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"),
    ],
)
def test_content_disposition_is_a_download_with_an_encoded_name(filename: str | None, expected: str) -> None:
    """Always ``attachment``; the name without path or control characters, RFC 8187-encoded beside an ASCII one."""
    assert expected == content_disposition(filename)


IMAGE = Attachment("shot.png", "image/png", 70, True, content_id="shot@mail")
PDF = Attachment("log.pdf", "application/pdf", 82, False)


def test_inline_images_point_at_the_attachment_urls_and_nothing_else_survives() -> None:
    """cid: images become this message's URLs; remote images, scripts, handlers and styles go; the history is cut."""
    html = (
        '<div dir="ltr" style="color:red" onclick="x()">See <b>this</b>:<img src="cid:shot@mail" alt="shot">'
        '<img src="https://tracker.example/p.gif"><img src="/v1/inbound/9/attachments/0">'
        '<script>alert(1)</script><a href="javascript:alert(1)">x</a> <a href="https://ok.example">ok</a></div>'
        '<div class="gmail_quote">On Mon, Bob wrote:<blockquote>old words</blockquote></div>'
    )
    assert (
        '<div>See <b>this</b>:<img src="/v1/inbound/7/attachments/1" alt="shot"><img><img>'
        '<a rel="noopener noreferrer">x</a> <a href="https://ok.example" rel="noopener noreferrer">ok</a></div>'
    ) == reply_html(html=html, text="See this:", rule="gmail_quote_html", inbound_id=7, attachments=[PDF, IMAGE])


def test_html_without_a_history_marker_is_kept_whole_only_when_nothing_was_cut() -> None:
    """No structural marker: the whole HTML if the extractor cut nothing, else the extracted text, escaped."""
    html = "<p>Fixed &amp; done.</p><p>On Mon, Bob wrote:<br>&gt; old</p>"
    assert "<p>Fixed &amp; done.</p><p>On Mon, Bob wrote:<br>&gt; old</p>" == reply_html(
        html=html, text="x", rule="no_quote", inbound_id=1, attachments=[])
    assert "<p>Fixed &amp; done.</p>" == reply_html(
        html=html, text="Fixed & done.", rule="on_wrote_header", inbound_id=1, attachments=[])


def test_text_only_replies_render_as_escaped_paragraphs() -> None:
    """A text reply is escaped HTML: one paragraph per block, line breaks kept."""
    assert "<p>a &lt;b&gt;<br>c</p><p>d</p>" == text_as_html("a <b>\nc\n\n\nd\n")
    assert "<p>1 &lt; 2</p>" == reply_html(html=None, text="1 < 2", rule="no_quote", inbound_id=1, attachments=[])
