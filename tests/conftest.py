import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# the trace cache of this test run, never the user's (subprocesses inherit it)
os.environ["HWSIM_CACHE_DIR"] = __import__("tempfile").mkdtemp(prefix="hwsim-test-cache-")

import torch  # noqa: E402

torch.set_num_threads(1)
