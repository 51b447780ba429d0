import os
import sys
from pathlib import Path

import pytest

# Tests never wait on the network: the Hub is unreachable on build machines and in CI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# The app compiles its default model as it starts (tens of seconds); the servers the tests start
# serve tiny random models, so they skip that; tests/test_inference.py covers the compiled path.
os.environ.setdefault("BRAIN_TUMOR_COMPILE", "0")

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))  # for tests/synthetic.py and other test helpers
from imaging_samples import bad_files  # noqa: E402,F401  (the bad-input matrix, a fixture for format and app tests)

REAL_DATASET = TESTS_DIR.parent.parent / "shared" / "data" / "brain-tumor-mri-v1"


@pytest.fixture(scope="session")
def kaggle_folder(tmp_path_factory):
    from synthetic import make_kaggle_folder

    return make_kaggle_folder(tmp_path_factory.mktemp("kaggle"))


@pytest.fixture(scope="session")
def real_dataset():
    if not (REAL_DATASET / "Training").is_dir():
        pytest.skip(f"real dataset not found at {REAL_DATASET}")
    return REAL_DATASET
