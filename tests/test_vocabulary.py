"""The reader's cut-down XLM-R vocabulary must tokenize Chinese and English text exactly as the whole one does."""

import json
from pathlib import Path

import pytest

from retriever import e5_small
from retriever.vocabulary import kept_text, prune_unigram

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tokenizers():
    from tokenizers import Tokenizer

    whole = json.loads(e5_small.tokenizer_file().read_text(encoding="utf-8"))
    pruned, keep = prune_unigram(whole)
    return Tokenizer.from_str(json.dumps(whole)), Tokenizer.from_str(json.dumps(pruned)), keep


def texts() -> list[str]:
    lines = [line for path in sorted((ROOT / "qa" / "data" / "corpus").glob("*.txt"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for line in (ROOT / "tests" / "data" / "dev_questions.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        lines += [item["question"], *item["answers"]]
    return lines + ["ＡＩ与量子计算！５Ｇ网络覆盖率达９５％", "GDP同比增长5.2%，CPI上涨0.3%。", "《人民日报》——“十四五”规划…"]


def test_chinese_and_english_text_keeps_its_tokens(tokenizers):
    whole, pruned, keep = tokenizers
    assert 100_000 < len(keep) < 0.5 * whole.get_vocab_size()  # the table's rows shrink by more than half
    lines = texts()
    assert len(lines) > 100 and all(kept_text(line) for line in lines)
    for line, a, b in zip(lines, whole.encode_batch(lines), pruned.encode_batch(lines)):
        assert b.tokens == a.tokens and b.offsets == a.offsets, line
        assert [int(keep[i]) for i in b.ids] == a.ids  # each new id stands for the same old piece (its table row)


def test_other_scripts_still_tokenize_without_new_unknowns(tokenizers):
    whole, pruned, keep = tokenizers
    unk = pruned.token_to_id("<unk>")
    for text in ["Привет, мир", "مرحبا بالعالم", "Nguyễn Phú Trọng đã phát biểu", "서울특별시", "Ελλάδα"]:
        assert not kept_text(text)
        got = pruned.encode(text, add_special_tokens=False)
        assert got.ids.count(unk) == whole.encode(text, add_special_tokens=False).ids.count(whole.token_to_id("<unk>")), text
        assert "".join(got.tokens).replace("\u2581", " ").strip() == text  # spelt out by smaller pieces
    for special in ("<s>", "<pad>", "</s>", "<unk>", "<mask>"):
        assert int(keep[pruned.token_to_id(special)]) == whole.token_to_id(special)
