"""The trace cache: a hit equals a fresh lowering and needs no torch; stale or corrupt
entries are rebuilt, never trusted; --no-cache and 'hwsim cache' do what they say."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from workloads import cache
from workloads.spec import Lowering, resolve


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path / "c"))
    return tmp_path / "c" / "traces"


def _same(a, b):
    da, ta = a.to_dict()
    db, tb = b.to_dict()
    assert da == db
    assert ta.keys() == tb.keys()
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k])


def test_a_hit_equals_a_fresh_lowering(cache_dir):
    fresh = resolve("lenet5", batch=2)
    first = resolve("lenet5", batch=2, cache=True)
    assert len(cache.entries()) == 1
    hit = resolve("lenet5", batch=2, cache=True)
    _same(fresh, first)
    _same(fresh, hit)
    # weights kept, a training step, another batch: each its own entry
    resolve("lenet5", batch=2, keep_weights=True, cache=True)
    resolve("lenet5", batch=2, how=Lowering(train=True), cache=True)
    resolve("lenet5", batch=3, cache=True)
    assert len(cache.entries()) == 4
    _same(resolve("lenet5", batch=2, keep_weights=True), resolve("lenet5", batch=2, keep_weights=True, cache=True))


def test_a_hit_imports_no_torch(cache_dir, tmp_path):
    # The miss lowers in this process (the cache_dir fixture points $HWSIM_CACHE_DIR at the
    # scratch folder the subprocess reads): it only fills the cache, and a miss's lowering
    # needing torch is shown in its own process by test_start_up_imports_nothing_heavy. The
    # hit, whose imports are the point, runs in a fresh process.
    assert not cache.entries()
    miss = resolve("lenet300", cache=True)
    assert len(cache.entries()) == 1
    code = ("import sys\nfrom workloads.spec import resolve\n"
            "wl = resolve('lenet300', cache=True)\nprint(len(wl.ops), 'torch' in sys.modules)")
    env = {"HWSIM_CACHE_DIR": str(tmp_path / "c"), "PATH": "/usr/bin:/bin"}
    hit = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert hit.stdout.split() == [str(len(miss.ops)), "False"]
    assert len(cache.entries()) == 1          # a hit, not a second entry


@pytest.mark.parametrize("damage", ["flip a byte of the trace", "truncate the tensors", "change the key",
                                    "remove the trace", "garble the meta", "other tensors of the same size",
                                    "an entry without the tensors' digest"])
def test_a_damaged_entry_is_rebuilt(cache_dir, capsys, damage):
    fresh = resolve("lenet5", keep_weights=True)
    resolve("lenet5", keep_weights=True, cache=True)
    (entry,) = cache.entries()
    trace, npz, meta = (cache_dir / f"{entry.digest}{s}" for s in (".json", ".npz", ".meta.json"))
    if damage == "flip a byte of the trace":
        b = bytearray(trace.read_bytes())
        i = b.index(b'"batch":1') + 8
        b[i] = ord("7")                       # still valid JSON, a different batch
        trace.write_bytes(bytes(b))
    elif damage == "truncate the tensors":
        npz.write_bytes(npz.read_bytes()[:1000])
    elif damage == "change the key":
        m = json.loads(meta.read_text())
        m["key"]["torch"] = "0.0"
        meta.write_text(json.dumps(m))
    elif damage == "remove the trace":
        trace.unlink()
    elif damage == "other tensors of the same size":
        size = npz.stat().st_size
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        name = next(k for k, v in arrays.items() if v.size)
        arrays[name] = arrays[name].copy()
        arrays[name].flat[0] += 1             # another value, same dtype and shape
        np.savez(npz, **arrays)               # a valid zip: every member's CRC-32 is right
        assert npz.stat().st_size == size
        with np.load(npz) as z:               # it reads back cleanly, so only the digest tells
            assert z[name].flat[0] != fresh.to_dict()[1][name].flat[0]
    elif damage == "an entry without the tensors' digest":
        m = json.loads(meta.read_text())      # as an older hwsim wrote it
        del m["npz_sha256"]
        meta.write_text(json.dumps(m))
    else:
        meta.write_text("{not json")
    capsys.readouterr()
    got = resolve("lenet5", keep_weights=True, cache=True)
    assert "stale or corrupt" in capsys.readouterr().err
    _same(fresh, got)
    assert len(cache.entries()) == 1            # rebuilt in place
    assert "stale or corrupt" not in (resolve("lenet5", keep_weights=True, cache=True) and capsys.readouterr().err)


def test_a_changed_user_model_file_is_a_new_entry(cache_dir, tmp_path):
    f = tmp_path / "net.py"
    src = textwrap.dedent("""
        import torch
        def make(batch=1):
            return torch.nn.Sequential(torch.nn.Linear(8, {n})), torch.randn(batch, 8)
    """)
    f.write_text(src.format(n=4))
    assert resolve(f"{f}:make", cache=True).ops[0].gemm.N == 4
    f.write_text(src.format(n=5))
    assert resolve(f"{f}:make", cache=True).ops[0].gemm.N == 5
    assert len(cache.entries()) == 2


def test_a_user_model_seeded_otherwise_is_a_new_entry(cache_dir, tmp_path):
    """The seed a file.py:factory runs with is part of its key: --seed 2 never serves --seed 1's trace."""
    from workloads.usercode import seeded

    f = tmp_path / "net.py"
    f.write_text(textwrap.dedent("""
        import torch
        def make(batch=1):          # torch's default initialisation and an unseeded input
            return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)), \\
                torch.randn(batch, 64)
    """))

    def density(s):
        with seeded(s):
            return resolve(f"{f}:make", cache=True).rows()[-1]["act_density"]

    assert density(1) == density(1) != density(2)
    assert len(cache.entries()) == 2
    assert resolve(f"{f}:make").rows()[-1]["act_density"] == density(0)       # the default seed is 0


def test_the_size_cap_evicts_least_recently_used(cache_dir, monkeypatch):
    resolve("lenet5", cache=True)
    resolve("lenet300", cache=True)
    resolve("lenet5", cache=True)            # now the most recent
    sizes = {e.spec: e.bytes for e in cache.entries()}
    monkeypatch.setenv("HWSIM_CACHE_MAX_MB", str((sizes["lenet5"] + sizes["lenet5"] // 2) / 2**20))
    resolve("lenet5", batch=3, cache=True)   # a third entry: the oldest two go
    assert [e.spec for e in cache.entries()] == ["lenet5"]
    monkeypatch.setenv("HWSIM_CACHE_MAX_MB", "lots")
    with pytest.raises(Exception, match="HWSIM_CACHE_MAX_MB"):
        resolve("lenet5", batch=4, cache=True)


def test_cli_no_cache_info_and_clear(cache_dir, capsys):
    """In process (the cache_dir fixture points $HWSIM_CACHE_DIR at a scratch folder; the
    installed command's own process is checked by test_start_up_imports_nothing_heavy)."""
    from analysis.cli import main

    def hwsim(*args):
        rc = main(list(args))
        return rc, capsys.readouterr().out

    assert hwsim("lower", "lenet300", "--no-cache")[0] == 0
    assert not cache_dir.exists() or not any(cache_dir.iterdir())
    assert hwsim("simulate", "lenet300", "--arch", "systolic-16")[0] == 0
    rc, info = hwsim("cache", "info")
    assert rc == 0 and "1 entries" in info and "lenet300" in info
    assert hwsim("simulate", "lenet300", "--arch", "systolic-16", "--no-cache")[0] == 0
    rc, out = hwsim("cache", "clear")
    assert rc == 0 and "removed 1 entries" in out
    assert not list(cache_dir.iterdir())
    assert "0 entries" in hwsim("cache", "info")[1]


def _imported(args, env):
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "analysis.cli", *args], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    return {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "import time:" in line}


def test_start_up_imports_nothing_heavy(tmp_path):
    env = {"HWSIM_CACHE_DIR": str(tmp_path / "c"), "PATH": "/usr/bin:/bin"}
    for args in (["--help"], ["models"], ["archs"], ["cache", "info"]):
        assert not _imported(args, env) & {"torch", "pandas", "matplotlib"}, args
    assert "torch" in _imported(["simulate", "lenet300", "--arch", "tpu-v1", "--format", "csv"], env)   # a miss
    hit = _imported(["simulate", "lenet300", "--arch", "tpu-v1", "--format", "csv"], env)
    assert not hit & {"torch", "matplotlib"}


def test_training_steps_come_from_the_cache(cache_dir, monkeypatch):
    from analysis import train as T
    from sim.system.topology import PRESETS
    job = T.Job("gpt:2,128,4,64,1000", PRESETS["dgx-a100"].with_devices(8), 2, 1, 4, 8, 1, "none", "1f1b", 0)
    fresh = T.run(job, T.Model(job))
    first = T.run(job, T.Model(job, cache=True))
    (costs, entry) = sorted((e for e in cache.entries() if not e.spec.endswith("(SM main loop)")), key=lambda e: e.spec)
    assert entry.spec == "gpt:2,128,4,64,1000#vocab=1024"     # the vocabulary padded to 128 x tp
    assert costs.spec == "gpt:2,128,4,64,1000 (training costs)"   # and the layer's costs (analysis.train_cache)
    import workloads.spec as S

    def lowered_again(*a, **k):
        raise AssertionError("lowered again")
    monkeypatch.setattr(S, "_lower", lowered_again)
    again = T.run(job, T.Model(job, cache=True))
    assert fresh.step.step_us == first.step.step_us == again.step.step_us
    assert fresh.step.memory == again.step.memory
