"""Crash-test worker: loads the embedder once, then forks one writer per trial (the test SIGKILLs it).

Imports only retriever/ and the embedder. Protocol over stdin/stdout, one line each:
    build <root>                      -> "BUILT"            (a fresh index of the bundled articles)
    trial <root> <first> <count>      -> "PID <pid>", then the writer's lines, then "EXIT <status>"
The writer adds documents first..first+count-1 (tests.reliability_support.article) in batches of 1-3, and
prints "ADDED id,id" after each add returns, "PHASE <step>" as a commit goes (so the test knows where it
killed) and "DONE" at the end.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())  # one write per line: atomic on the shared pipe


def writer(embedder, root: str, first: int, count: int) -> None:
    import retriever.index as index_module
    from reliability_support import article
    from retriever.documents import Document, bundled_documents
    from retriever.index import CorpusIndex

    fsync_write, replace, collect = index_module._fsync_write, os.replace, CorpusIndex._collect_garbage

    def traced_write(path, data):
        say(f"PHASE write {Path(path).name if not Path(path).name.startswith('.') else 'document-tmp'}")
        fsync_write(path, data)

    def traced_replace(src, dst):
        say(f"PHASE replace {Path(dst).name if Path(dst).parent.name != 'documents' else 'document'}")
        replace(src, dst)

    def traced_collect(self, keep):
        say("PHASE collect-garbage")
        collect(self, keep)

    index_module._fsync_write = traced_write
    index_module.os.replace = traced_replace
    CorpusIndex._collect_garbage = traced_collect
    index = CorpusIndex.open(Path(root), embedder, bundled_documents)
    rng = random.Random(first)
    n = first
    while n < first + count:
        batch = list(range(n, min(first + count, n + rng.randint(1, 3))))
        say("PHASE embed")
        added, _ = index.add([Document(f"crash-{k:05d}", f"第{k}期", article(k), "crash-test") for k in batch])
        say("ADDED " + ",".join(added))
        n = batch[-1] + 1
    say("DONE")


def main() -> None:
    import torch

    torch.set_num_threads(1)  # no thread pool in the parent: forking stays safe
    from retriever.documents import bundled_documents
    from retriever.embedder import Embedder
    from retriever.index import CorpusIndex

    embedder = Embedder("m3e-small")
    say("READY")
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "build":
            pid = os.fork()
            if pid == 0:
                CorpusIndex.open(Path(parts[1]), embedder, bundled_documents)
                os._exit(0)
            os.waitpid(pid, 0)
            say("BUILT")
        elif parts[0] == "trial":
            pid = os.fork()
            if pid == 0:
                try:
                    writer(embedder, parts[1], int(parts[2]), int(parts[3]))
                    os._exit(0)
                except BaseException:
                    import traceback

                    traceback.print_exc()
                    os._exit(1)
            say(f"PID {pid}")
            _, status = os.waitpid(pid, 0)
            say(f"EXIT {status}")
        elif parts[0] == "quit":
            break


if __name__ == "__main__":
    main()
