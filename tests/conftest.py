import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# the trace cache of this test process, never the user's (subprocesses inherit it): one per
# pytest-xdist worker, since tests assert what their own runs wrote to it (a folder shared
# between workers changes under them); removed when the session ends
_CACHE = Path(tempfile.mkdtemp(prefix="hwsim-test-cache-"))
os.environ["HWSIM_CACHE_DIR"] = str(_CACHE)

import torch  # noqa: E402

torch.set_num_threads(1)


import pytest  # noqa: E402


def pytest_sessionfinish(session):
    shutil.rmtree(_CACHE, ignore_errors=True)


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
