"""qa.training.refusal_check: each refusal check's effect on held-back answers, counted per check."""

from types import SimpleNamespace

from qa.reader import Span
from qa.training.refusal_check import tally


def _row(question, passages, answers, span):
    return {"question": question, "passages": passages, "answers": answers, "spans": [[span]],
            "overlap": [0] * len(passages)}


def test_a_check_is_counted_where_it_refuses_and_where_it_costs_a_right_answer():
    """Three answered questions: an unanswerable one about a year the passage never names (refused by "figure
    never mentioned"), a right answer no check touches, and a right answer in another unit than the asked one
    (a cost of "unit not the asked one"). A span under the threshold counts nowhere: it was refused already."""
    reader = SimpleNamespace(type_slack=0.0, no_answer_threshold=0.0)
    passage = "中关村论坛诞生于2007年，共有86个国家和地区的嘉宾参加。"
    year = passage.index("2007年")
    guests = passage.index("86个")
    rows = [
        _row("2031年论坛在哪里举办？", [passage], [], Span(0, year, year + 5, "2007年", 5.0, 3.0)),
        _row("论坛是哪一年诞生的？", [passage], ["2007年"], Span(0, year, year + 5, "2007年", 5.0, 3.0)),
        _row("嘉宾来自多少家机构？", [passage], ["86个"], Span(0, guests, guests + 3, "86个", 5.0, 3.0)),
        _row("论坛是哪一年诞生的？", [passage], ["2007年"], Span(0, year, year + 5, "2007年", 1.0, -1.0)),
    ]
    out = tally(rows, reader)
    assert out["figure never mentioned"]["unanswerable refused"] == 1
    assert out["figure never mentioned"]["answerable refused"] == 0
    assert out["unit not the asked one"]["answerable refused"] == 1
    assert out["unit not the asked one"]["right answers lost"] == 1
    assert out["any"]["answerable answered"] == 2 and out["any"]["unanswerable answered"] == 1
    # as many refusals by a higher threshold: the two lowest margins (all 3.0 here, so the first two rows)
    assert out["any"]["threshold: unanswerable refused"] == 1 and out["any"]["threshold: right answers lost"] == 1


def test_a_name_outside_the_chunk_but_near_in_its_paragraph_does_not_refuse():
    """The pipeline reads a chunk's whole article: a question's name just before the chunk that was read counts as
    near, as it does in the product; with the chunk alone it would not."""
    from qa.training.refusal_check import checks

    paragraph = "李彦宏在论坛上发言。" + "他说，百度展示了文心一言。"
    chunk = paragraph[10:]
    at = chunk.index("文心一言")
    span = Span(0, at, at + 4, "文心一言", 5.0, 3.0)
    question = "李彦宏展示了哪款产品？"
    assert checks(question, span, [chunk])["name far from the answer"]
    assert not checks(question, span, [chunk], {chunk: (paragraph, 10)})["name far from the answer"]


def test_ship_reads_the_threshold_domains_with_the_refusal_checks_on():
    """A valid-domain question about a year its passage never names: with the checks (as the pipeline answers) its
    span is refused, so a threshold chosen on the domain counts it as refused whatever its margin; without them it is
    an answer like any other. The margin is the same either way."""
    from pathlib import Path

    from qa.reader import Reader
    from qa.training.data import Example
    from qa.training.ship import domain_margins

    reader = Reader.load(Path(__file__).resolve().parent.parent / "qa" / "weights" / "reader", "torch")
    passage = "中关村论坛诞生于2007年，至今已举办多届。2023年论坛于5月25日至30日在北京举办。"
    examples = [Example("a", "set.json", 0, "2031年论坛在哪里举办？", passage, []),
                Example("b", "set.json", 0, "2023年论坛在哪里举办？", passage, [("北京", passage.index("北京"))])]
    on = domain_margins(reader, examples, refusal_checks=True)
    off = domain_margins(reader, examples)
    assert on[0][2] is None and off[0][2] is not None and on[0][1] == off[0][1]
    assert on[1][2] == off[1][2] and "北京" in on[1][2]  # an answer the checks let through
