"""Normalising keeps a map back to every character of the original file."""

from hypothesis import given, settings, strategies as st

from retriever.normalize import debris_start, normalize
from tests.conftest import DOC_000, DOC_002, original


def _nonspace(s: str) -> str:
    return "".join(s.split())


def test_pdf_line_breaks_are_joined():
    norm = normalize(original(DOC_002))
    for joined in ["1万年", "北京量子信息科学研究院", "不应成为埋在山洞里的宝藏", "国际科技交流合作的广度和深度"]:
        assert joined in norm.text, joined


def test_paragraphs_and_headings_stay_apart():
    norm = normalize(original(DOC_000))
    assert "——编者\n广泛凝聚共识，推动科技造福各国人民\n人工智能" in norm.text
    norm2 = normalize(original(DOC_002))
    assert "新华社记者任超摄\n创新是引领发展的第一动力" in norm2.text  # caption not glued to the column text


def test_trailing_column_debris_is_dropped():
    text = original(DOC_002)
    cut = debris_start(text)
    assert cut < len(text)
    assert text[cut:].strip() == "”"
    assert not normalize(text).text.endswith("”")


def test_spans_map_back_to_exact_original_offsets():
    text = original(DOC_002)
    norm = normalize(text)
    i = norm.text.index("1万年")
    start, end = norm.to_original(i, i + 3)
    assert text[start:end] == "1\n万年"
    i = norm.text.index("不应成为埋在")
    start, end = norm.to_original(i, i + 6)
    assert text[start:end] == "不应成\n\n为埋在"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("中关村论坛科技。，！？”“ab1 \n\n\u3000\t—▲")) , max_size=300))
def test_property_offsets_give_back_the_same_characters(text):
    norm = normalize(text)
    kept = text[: debris_start(text)]
    assert len(norm.offsets) == len(norm.text)
    assert all(b > a for a, b in zip(norm.offsets, norm.offsets[1:]))  # strictly increasing
    for ch, pos in zip(norm.text, norm.offsets):
        assert ch == text[pos] or (ch in " \n" and text[pos].isspace())
    assert _nonspace(norm.text) == _nonspace(kept)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_property_any_unicode(text):
    norm = normalize(text)
    for ch, pos in zip(norm.text, norm.offsets):
        assert ch == text[pos] or (ch in " \n" and text[pos].isspace())
    assert _nonspace(norm.text) == _nonspace(text[: debris_start(text)])
