from hypothesis import given, settings, strategies as st

from retriever.chunking import chunk_document, split_sentences
from retriever.documents import Document, bundled_documents


def test_sentences_never_split_inside_numbers_or_names():
    text = "增速达到28.4%，比尔·盖茨表示：“很好。”随后他离开了！U.S.代表团也来了？是的"
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert sentences == ["增速达到28.4%，比尔·盖茨表示：“很好。”", "随后他离开了！", "U.S.代表团也来了？", "是的"]


def test_bundled_chunks_know_document_sentences_and_offsets():
    for doc in bundled_documents():
        norm, chunks = chunk_document(doc, size=200, overlap=60)
        assert chunks
        for chunk in chunks:
            assert chunk.doc_id == doc.id
            assert len(chunk.text) <= 200
            assert chunk.sentences == tuple(sorted(chunk.sentences))
            assert norm.text[chunk.norm_start : chunk.norm_end] == chunk.text
            # the original slice holds the same characters, whitespace aside
            assert "".join(doc.text[chunk.start : chunk.end].split()) == "".join(chunk.text.split())
        covered = "".join(c.text for c in chunks)
        for sentence_start, sentence_end in split_sentences(norm.text):
            assert norm.text[sentence_start:sentence_end][:50] in covered


def test_chunks_overlap_and_cover_the_text():
    doc = bundled_documents()[0]
    norm, chunks = chunk_document(doc, size=120, overlap=40)
    for a, b in zip(chunks, chunks[1:]):
        assert not norm.text[a.norm_end : b.norm_start].strip()  # no text falls between consecutive chunks
        assert b.norm_start > a.norm_start


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=600), st.integers(20, 300))
def test_property_chunks_map_back(text, size):
    doc = Document("d", "t", text)
    norm, chunks = chunk_document(doc, size=size, overlap=size // 4)
    for chunk in chunks:
        assert len(chunk.text) <= size
        assert "".join(text[chunk.start : chunk.end].split()) == "".join(chunk.text.split())
