from qa.metrics import char_f1, exact_match


def test_cmrc_scoring_strips_spaces_and_punctuation():
    assert exact_match("136 个", ["136个"]) == 1.0
    assert exact_match("“量子”", ["量子"]) == 1.0
    assert exact_match("650家", ["约650家"]) == 0.0
    assert round(char_f1("650家", ["约650家"]), 3) == round(2 * 1 * 0.8 / 1.8, 3)
    assert char_f1("北京", ["上海"]) == 0.0


def test_unanswerable_scoring():
    assert exact_match(None, []) == 1.0
    assert exact_match("北京", []) == 0.0
    assert char_f1(None, ["北京"]) == 0.0
