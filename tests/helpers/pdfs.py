"""PDFs written in the tests, byte by byte (no PDF library needed): pages of text and table lines, any page
size or count, and the same encrypted with a user password (the PDF Standard security handler, RC4 40-bit,
revision 2), so every document the page is tested with is a real file PDFium has to parse.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

from PIL import Image, ImageDraw

# PDF 1.7 (ISO 32000-1) 7.6.3.3, Algorithm 2: the padding string of the Standard security handler.
PASSWORD_PADDING = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
PERMISSIONS = -4  # everything allowed; the user password alone keeps the file closed
FILE_ID = bytes.fromhex("0123456789abcdef0123456789abcdef")
LETTER = (612, 792)  # points


def page_text(number: int) -> bytes:
    """A page's content stream: a heading and a 3x3 table drawn with lines."""
    lines = [
        f"BT /F1 36 Tf 72 700 Td (Page {number}) Tj ET",
        "BT /F1 14 Tf 72 650 Td (Quarter  Revenue  Cost) Tj ET",
        "2 w 72 560 300 80 re S 72 613 m 372 613 l S 72 586 m 372 586 l S 172 560 m 172 640 l S",
    ]
    return "\n".join(lines).encode()


def pdf_bytes(
    page_count: int = 1,
    *,
    size: tuple[float, float] = LETTER,
    sizes: Sequence[tuple[float, float]] | None = None,
    password: str | None = None,
) -> bytes:
    """A PDF of `page_count` pages (each `size` points, or `sizes[i]`), each with page_text on it; encrypted
    with `password` as the user password when given."""
    sizes = list(sizes) if sizes is not None else [size] * page_count
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(sizes)))
    objects: list[bytes] = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        f"<</Type/Pages/Kids[{kids}]/Count {len(sizes)}>>".encode(),
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    streams: dict[int, bytes] = {}
    for index, (width, height) in enumerate(sizes):
        content_number = 5 + 2 * index
        objects.append(
            f"<</Type/Page/Parent 2 0 R/MediaBox[0 0 {width:g} {height:g}]/Resources<</Font<</F1 3 0 R>>>>"
            f"/Contents {content_number} 0 R>>".encode()
        )
        streams[content_number] = page_text(index + 1)
        objects.append(b"")  # the stream object, filled in below (encrypted or not)
        assert len(objects) == content_number
    key = _file_key(password) if password is not None else None
    for number, data in streams.items():
        body = _rc4(_object_key(key, number), data) if key else data
        objects[number - 1] = f"<</Length {len(body)}>>\nstream\n".encode() + body + b"\nendstream"
    trailer = f"/Root 1 0 R/ID[<{FILE_ID.hex()}><{FILE_ID.hex()}>]"
    if password is not None:
        owner, user = _owner_entry(password), _rc4(_file_key(password), PASSWORD_PADDING)
        objects.append(
            f"<</Filter/Standard/V 1/R 2/O<{owner.hex()}>/U<{user.hex()}>/P {PERMISSIONS}>>".encode()
        )
        trailer += f"/Encrypt {len(objects)} 0 R"
    return _assemble(objects, trailer)


def scanned_pdf(text_rows: Sequence[Sequence[str]], *, resolution: float = 150.0) -> bytes:
    """A 'scanned' one-page PDF: a table drawn into a picture, saved with Pillow's PDF writer."""
    picture = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
    draw = ImageDraw.Draw(picture)
    for row, cells in enumerate(text_rows):
        for column, cell in enumerate(cells):
            x, y = 100 + 300 * column, 150 + 80 * row
            draw.rectangle((x, y, x + 300, y + 80), outline="black", width=3)
            draw.text((x + 20, y + 25), cell, fill="black", font_size=32)
    buffer = io.BytesIO()
    picture.save(buffer, "PDF", resolution=resolution)
    return buffer.getvalue()


def zero_page_pdf() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    return _assemble([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[]/Count 0>>"], "/Root 1 0 R")


def damaged_page_pdf() -> bytes:
    """Two pages in the page tree, the second pointing to an object the file does not have."""
    page = b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>"
    return _assemble(
        [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R 9 0 R]/Count 2>>", page], "/Root 1 0 R"
    )


def _assemble(objects: Sequence[bytes], trailer: str) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<</Size {len(objects) + 1}{trailer}>>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _padded(password: str) -> bytes:
    return (password.encode("latin-1") + PASSWORD_PADDING)[:32]


def _owner_entry(password: str) -> bytes:
    """Algorithm 3 (revision 2), with the owner password equal to the user password."""
    return _rc4(hashlib.md5(_padded(password)).digest()[:5], _padded(password))


def _file_key(password: str) -> bytes:
    """Algorithm 2 (revision 2): the 40-bit file key."""
    digest = hashlib.md5(
        _padded(password) + _owner_entry(password) + PERMISSIONS.to_bytes(4, "little", signed=True) + FILE_ID
    )
    return digest.digest()[:5]


def _object_key(key: bytes | None, number: int) -> bytes:
    """Algorithm 1: the key for one object's strings and streams (generation 0)."""
    assert key is not None
    return hashlib.md5(key + number.to_bytes(3, "little") + b"\x00\x00").digest()[: len(key) + 5]


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)
