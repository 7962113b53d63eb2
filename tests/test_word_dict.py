"""jieba's dictionary read word by word from SQLite (retriever.word_dict) segments exactly as jieba's loaded one."""

import subprocess
import sys
from pathlib import Path

import jieba
import jieba.posseg

from retriever import word_dict
from retriever.documents import bundled_documents
from retriever.word_dict import DiskWords, dictionary_file

ROOT = Path(__file__).resolve().parents[1]
MORE = ["世界知识产权组织总干事邓鸿森说，中国的创新成就与科技进步尤令世人瞩目。", "比尔及梅琳达·盖茨基金会在北京设立办公室",
        "AI芯片公司寒武纪2023年营收7.09亿元", "臺灣大學的學生在台北參加了比賽", "副部长安永军出席了会议。"]


def test_same_words_and_tags_as_jieba_s_own_dictionary(tmp_path):
    path = dictionary_file(Path(jieba.__file__).parent, tmp_path)
    whole = jieba.Tokenizer()
    whole.initialize()
    disk = jieba.Tokenizer()
    disk.FREQ = DiskWords(path, "count")
    disk.total, disk.initialized = disk.FREQ.total, True
    assert disk.total == whole.total
    whole_tags = jieba.posseg.POSTokenizer(whole)
    disk_tags = jieba.posseg.POSTokenizer(disk)
    disk_tags.word_tag_tab = DiskWords(path, "tag")
    texts = [doc.text for doc in bundled_documents()] + MORE
    for text in texts:
        assert disk.lcut(text) == whole.lcut(text)
        assert disk.lcut_for_search(text) == whole.lcut_for_search(text)
        assert disk.lcut(text, HMM=False) == whole.lcut(text, HMM=False)
        assert [tuple(p) for p in disk_tags.lcut(text)] == [tuple(p) for p in whole_tags.lcut(text)]


def test_many_reads_hand_over_to_the_whole_dictionary(tmp_path, monkeypatch):
    monkeypatch.setattr(word_dict, "WHOLE_AFTER", 5)
    calls = []
    words = DiskWords(dictionary_file(Path(jieba.__file__).parent, tmp_path), "count", lambda: calls.append(1))
    for w in ["中", "中关", "中关村", "论坛", "诞生", "中关", "火星"]:  # "中关" again: remembered, not read twice
        words.get(w)
    assert calls == [1] and words["中关村"] > 0 and words["世界知识产权组"] == 0 and "不存在的词语组合" not in words  # a prefix: 0


def test_a_new_process_reads_words_from_disk_unless_asked_to_load_them_whole():
    code = ("from retriever.text import load_jieba, tagged_words; j = load_jieba(); tagged_words('邓鸿森说');"
            "print(type(j.dt.FREQ).__name__, type(__import__('jieba.posseg').posseg.dt.word_tag_tab).__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["DiskWords", "DiskWords"]
    env = {**__import__("os").environ, "QA_JIEBA_WHOLE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["dict", "dict"]


def test_questions_arriving_together_in_a_new_process_all_get_their_tags():
    """A server's first questions arrive at once: every thread tags its question, none sees jieba half set up
    (8 concurrent HTTP clients hit an AttributeError from posseg's import before the loading was locked)."""
    code = """
import threading
from retriever.text import tagged_words
barrier, results, errors = threading.Barrier(8), [], []
def ask():
    barrier.wait()
    try:
        results.append(tagged_words('邓鸿森说中关村论坛在北京举行'))
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=ask) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(len(results), len({str(r) for r in results}), errors)
"""
    for _ in range(12):  # a race: before the lock, about 1 process in 12 lost a question
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        assert out.stdout.split() == ["8", "1", "[]"], out.stdout
