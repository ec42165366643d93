import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# the trace cache of this test run, never the user's (subprocesses inherit it); under
# pytest-xdist one folder for the run's workers together (xdist's PYTEST_XDIST_TESTRUNUID names
# the run), so that a model one worker lowered is a hit for the other: the cache's writes are
# atomic and its meta file is written last (workloads.cache), so two workers may share it.
# The process that made a folder removes it when the session ends (xdist's controller the
# shared one, see pytest_configure_node below)
_TMP = Path(tempfile.gettempdir())
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")
_OWN: list[Path] = []
if _RUN.isalnum():
    _CACHE = _TMP / f"hwsim-test-cache-{_RUN}"
    _CACHE.mkdir(mode=0o700, exist_ok=True)
else:
    _CACHE = Path(tempfile.mkdtemp(prefix="hwsim-test-cache-"))
    _OWN.append(_CACHE)
os.environ["HWSIM_CACHE_DIR"] = str(_CACHE)

import torch  # noqa: E402

torch.set_num_threads(1)


import pytest  # noqa: E402


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist's controller: the workers' shared cache folder is its to remove."""
    run = str(node.workerinput.get("testrunuid", ""))
    if run.isalnum():
        _OWN.append(_TMP / f"hwsim-test-cache-{run}")


def pytest_sessionfinish(session):
    for d in set(_OWN):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def trained_lenet300():
    """LeNet-300-100 trained on the 8x8 digits (seed 0), and the data; tests deep-copy it
    before changing it."""
    from workloads.compress.train import digits, train
    from workloads.zoo.lenet import LeNet300
    torch.manual_seed(0)
    data = digits(0)
    net = LeNet300(in_size=8)
    train(net, data, epochs=30)
    return net, data
