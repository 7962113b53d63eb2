import os
import tempfile
from pathlib import Path

import pytest

# the ONNX exports (keyed by a hash of the weights) are shared by the suite's many throw-away QA_HOMEs and by the
# processes they start: one export per model instead of one per home
os.environ.setdefault("QA_ONNX_CACHE", str(Path(tempfile.gettempdir()) / "qa-zh-tests-onnx"))

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "qa" / "data" / "corpus"
DOC_000 = "000_cde3536eadafbe36"
DOC_002 = "002_8e396b66035f7f8d"


def original(doc_id: str) -> str:
    return (CORPUS / f"{doc_id}.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    """One data directory for the tests that share the bundled index (built once, with the real models)."""
    return tmp_path_factory.mktemp("qa-home")


@pytest.fixture(scope="session")
def pipeline(session_home):
    from qa.pipeline import QAPipeline
    from qa.settings import Settings

    settings = Settings()
    settings.home = session_home
    return QAPipeline(settings)


@pytest.fixture(scope="session")
def embedder():
    from retriever.embedder import Embedder

    return Embedder("m3e-small")
