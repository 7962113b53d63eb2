"""Reading articles from files: PDF, HTML, odd encodings, and clear refusals for what is not an article."""

import pytest

from retriever.documents import MAX_FILE_BYTES, DocumentError, read_document, text_from_bytes

ARTICLE_LINES = ["青岛港启用无人集装箱码头", "12月3日，青岛港第三座自动化集装箱码头正式投入运",
                 "营。该码头全年设计吞吐能力为520万标准箱。"]


def make_pdf(path, lines=ARTICLE_LINES, password=None):
    from pypdf import PdfReader, PdfWriter
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    c.setFont("STSong-Light", 12)
    for n, line in enumerate(lines):
        c.drawString(50, 800 - 20 * n, line)
    c.save()
    if password:
        writer = PdfWriter(clone_from=PdfReader(str(path)))
        writer.encrypt(password)
        with open(path, "wb") as f:
            writer.write(f)
    return path


def test_pdf_text_is_extracted_and_line_breaks_joined(tmp_path):
    from retriever.normalize import normalize

    doc = read_document(make_pdf(tmp_path / "port.pdf"))
    assert doc.id == "port" and doc.title == "青岛港启用无人集装箱码头"
    assert "正式投入运营。" in normalize(doc.text).text


def test_html_scripts_and_styles_are_not_text(tmp_path):
    page = tmp_path / "news.html"
    page.write_text("<html><head><title>港口新闻</title><style>p{color:red}</style></head><body>"
                    "<script>alert('x')</script><h1>青岛港启用无人码头</h1><p>吞吐能力为520万标准箱。</p>"
                    "</body></html>", encoding="utf-8")
    doc = read_document(page)
    assert "alert" not in doc.text and "color" not in doc.text
    assert "吞吐能力为520万标准箱。" in doc.text


@pytest.mark.parametrize("encoding", ["gb18030", "big5", "utf-16", "utf-8-sig"])
def test_odd_encodings_are_decoded(encoding):
    text = "臺灣新聞：港口吞吐能力" if encoding == "big5" else "港口新闻：吞吐能力为520万标准箱"
    assert text_from_bytes(text.encode(encoding), "a.txt") == text


def test_refusals_are_clear(tmp_path):
    with pytest.raises(DocumentError, match="binary"):
        text_from_bytes(b"\x00\x01\x02PNG" * 100, "a.txt")
    with pytest.raises(DocumentError, match="no text"):
        text_from_bytes(b"  \n ", "a.txt")
    with pytest.raises(DocumentError, match="unsupported"):
        text_from_bytes(b"hello", "a.exe")
    with pytest.raises(DocumentError, match="broken PDF"):
        text_from_bytes(b"%PDF-1.4 this is not really a pdf", "a.pdf")
    with pytest.raises(DocumentError, match="encrypted"):
        read_document(make_pdf(tmp_path / "secret.pdf", password="pw"))
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: 200 MB on paper, nothing on disk
    with pytest.raises(DocumentError, match="limit"):
        read_document(huge)
    with pytest.raises(DocumentError, match="no such file"):
        read_document(tmp_path / "missing.txt")
    assert MAX_FILE_BYTES < 200 * 1024 * 1024
