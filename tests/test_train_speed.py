"""``hwsim train``'s fast paths (``analysis.train_cache``: per-layer costs cached on disk; the
ZeRO-3 schedule and pipeline recurrence with fewer lookups; chunk costs, ZeRO-3 steps and
collectives remembered) give the results of the reference path to the bit: the reference is
the original computation (``HWSIM_TRAIN_REFERENCE=1``: the costs simulated from the lowered
trace, ``sim.system.zero_reference.schedule``, nothing remembered beyond what ``hwsim train``
remembered before)."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from analysis import train as T
from analysis import train_cache as C
from sim.system import zero as z3
from sim.system import zero_reference as z3ref
from sim.system.topology import PRESETS

TINY = "gpt:4,128,4,64,1000"


def _job(**kw) -> T.Job:
    base = dict(model=TINY, system=PRESETS["dgx-a100"].with_devices(8), tp=2, pp=2, dp=2, global_batch=16,
                microbatch=2, recompute="none")
    return T.Job(**{**base, **kw})


def _model(job: T.Job, monkeypatch, reference: bool, cache: bool = True) -> T.Model:
    if reference:
        monkeypatch.setenv("HWSIM_TRAIN_REFERENCE", "1")
    else:
        monkeypatch.delenv("HWSIM_TRAIN_REFERENCE", raising=False)
    m = T.Model(job, cache)
    monkeypatch.delenv("HWSIM_TRAIN_REFERENCE", raising=False)
    assert m.fast is not reference
    return m


def _facts(r: T.TrainResult) -> tuple:
    """Everything a run reports, floats as their exact bits (repr)."""
    return (repr(r.summary()), repr(r.step.memory), repr(r.step.pipeline.busy_us), repr(r.stage_layers))


CONFIGS = [
    dict(),
    dict(zero=1, overlap_param_gather=True),
    dict(zero=2, recompute="selective"),
    dict(zero=3, recompute="full"),
    dict(zero=3, zero3="fsdp", microbatch=1),
    dict(zero=3, zero3="megatron-deepspeed", sequence_parallel=True, tp_comm_overlap=True),
    dict(tp=1, pp=2, dp=4, schedule="interleaved:2", microbatch=1),
    dict(stage_layers=(1, 3), schedule="gpipe"),
    dict(tp=1, pp=1, dp=4),                        # 4 of the system's 8 devices
]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "base")
def test_a_run_is_the_reference_runs_to_the_bit(kw, monkeypatch):
    job = _job(**kw)
    ref = T.run(job, _model(job, monkeypatch, reference=True, cache=False))
    cold = T.run(job, _model(job, monkeypatch, reference=False))          # simulates, stores the costs
    warm = T.run(job, _model(job, monkeypatch, reference=False))          # reads them from disk
    assert _facts(cold) == _facts(ref) == _facts(warm)


def test_a_search_ranks_as_the_reference_does(monkeypatch):
    job = dataclasses.replace(_job(), tp=1, pp=1, dp=1, microbatch=1, global_batch=8)
    ref = T.search(job, _model(job, monkeypatch, reference=True, cache=False), 8)
    fast = T.search(job, _model(job, monkeypatch, reference=False), 8)
    warm = T.search(job, _model(job, monkeypatch, reference=False), 8)
    assert len(ref) > 100
    assert [_facts(r) for r in ref] == [_facts(r) for r in fast] == [_facts(r) for r in warm]


def test_the_chosen_settings_are_the_references(monkeypatch):
    from analysis.train_cli import _resolve
    job = dataclasses.replace(_job(), zero=1)
    got = []
    for reference in (True, False, False):
        m = _model(job, monkeypatch, reference=reference, cache=not reference)
        r, chosen = _resolve(job, m, None, None, None)
        got.append((_facts(r), chosen))
    assert got[0] == got[1] == got[2]


def test_warm_costs_come_from_disk_without_simulating(monkeypatch):
    job = _job()
    first = T.run(job, _model(job, monkeypatch, reference=False))
    m = _model(job, monkeypatch, reference=False)

    def simulated_again(*a, **k):
        raise AssertionError("simulated again")
    monkeypatch.setattr(T.Model, "regions", simulated_again)
    assert _facts(T.run(job, m)) == _facts(first)


def _entries() -> list:
    return sorted(C.costs_dir().glob("*.costs.json"))


def test_cache_info_lists_the_costs_and_clear_removes_them(monkeypatch, tmp_path):
    from workloads import cache as tc
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path))
    job = _job()
    T.run(job, _model(job, monkeypatch, reference=False))
    files = _entries()
    costs = [e for e in tc.entries() if e.spec.endswith("(training costs)")]
    assert files and len(costs) == len(files) and all(e.spec.startswith(TINY) for e in costs)
    assert sum(e.bytes for e in costs) == sum(f.stat().st_size for f in files)
    n, _ = tc.clear()
    assert n >= len(files) and not _entries()


def test_a_corrupt_or_stale_entry_is_rebuilt(monkeypatch, capsys):
    job = _job(microbatch=4, recompute="selective")
    want = _facts(T.run(job, _model(job, monkeypatch, reference=True, cache=False)))
    fields = _model(job, monkeypatch, reference=False)._cost_fields(4, 2, "selective", False)
    T.run(job, _model(job, monkeypatch, reference=False))
    path = C._path(C.key_fields(fields))
    assert path.exists()
    good = json.loads(path.read_text())
    broken = {
        "truncated": path.read_text()[:100],
        "payload changed": json.dumps({**good, "costs": {**good["costs"], "blocks": ["h.9"]}}),
        "other key": json.dumps({**good, "key": {**good["key"], "tp": 4}}),
        "missing field": json.dumps({**good, "costs": {"blocks": good["costs"]["blocks"], "regions": {"pre": {}}}}),
    }
    for why, text in broken.items():
        path.write_text(text)
        if why == "missing field":      # a payload that checks but does not make a Region
            doc = json.loads(text)
            doc["costs_sha256"] = C._digest(json.dumps(doc["costs"], sort_keys=True).encode())
            path.write_text(json.dumps(doc))
        assert _facts(T.run(job, _model(job, monkeypatch, reference=False))) == want, why
        assert "stale or corrupt" in capsys.readouterr().err, why
        assert json.loads(path.read_text()) == good, why          # rebuilt as it was


def test_a_changed_simulator_misses_the_old_entries(monkeypatch):
    job = _job(microbatch=1)
    m = _model(job, monkeypatch, reference=False)
    T.run(job, m)
    fields = m._cost_fields(1, 2, "none", False)
    assert C.load(fields) is not None
    monkeypatch.setattr(C, "_CODE_DIGEST", "0" * 64)      # as after an edit to sim/ or workloads/
    assert C.load(fields) is None
    assert C.key_fields(fields)["code_sha256"] == "0" * 64


def test_the_key_holds_every_input_of_the_costs(monkeypatch):
    job = _job()
    m = _model(job, monkeypatch, reference=False)
    f = m._cost_fields(2, 2, "none", True)
    assert f is not None
    assert {"model", "family", "seq_len", "microbatch", "tp", "sequence_parallel", "recompute", "precision",
            "attention", "optimizer", "device"} <= set(f)
    assert "a100" in f["device"] and "dram_gbs=" in f["device"]          # the device's every field
    other = T.Model(dataclasses.replace(job, system=PRESETS["dgx-h100"].with_devices(8)), True)
    assert other._cost_fields(2, 2, "none", True)["device"] != f["device"]
    assert {"hwsim", "torch", "code_sha256", "costs_version"} <= set(C.key_fields(f))


def test_no_cache_and_the_reference_neither_read_nor_write(monkeypatch):
    job = _job(microbatch=8, recompute="full")
    before = _entries()
    T.run(job, _model(job, monkeypatch, reference=False, cache=False))
    T.run(job, _model(job, monkeypatch, reference=True, cache=True))
    assert _entries() == before
    assert _model(job, monkeypatch, reference=False, cache=False)._cost_fields(8, 2, "full", False) is None
    assert _model(job, monkeypatch, reference=True, cache=True)._cost_fields(8, 2, "full", False) is None


def test_costs_survive_json_exactly(monkeypatch):
    job = _job(zero=3)
    m = _model(job, monkeypatch, reference=False, cache=False)
    blocks, regions = m.costs(2, 2, "none")
    back = C.decode(json.loads(json.dumps(C.encode(blocks, regions))))
    assert back == (blocks, regions)
    assert _typed(back) == _typed((blocks, regions))      # types too (tuples, ints, floats)


def _typed(x):
    """``x`` with every value's type beside it (1 == 1.0 and (1,) != [1] hide nothing here)."""
    if dataclasses.is_dataclass(x):
        return (type(x).__name__, _typed(dataclasses.astuple(x)))
    if isinstance(x, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_typed(v) for v in x])
    return (type(x).__name__, repr(x))


# ---- ZeRO-3: the fast schedule against the first one ----------------------------------------------
def _random_seq(rng: random.Random, units: int, steps: int) -> z3.ZeroSeq:
    params = tuple(float(rng.choice([0, 1, 10, 1000, 5e7, 2e8, 6e8])) if rng.random() < 0.9 else rng.random() * 1e8
                   for _ in range(units))
    fwd = tuple((rng.randrange(-1, units), rng.random() * 100) for _ in range(steps))
    bwd = tuple((rng.randrange(-1, units), rng.random() * 100, rng.random() < 0.5) for _ in range(steps))
    return z3.ZeroSeq(params, tuple(rng.randrange(0, 3) for _ in range(units)), fwd, bwd)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32), st.integers(1, 8), st.integers(0, 30), st.sampled_from(sorted(z3.PRESETS)),
       st.floats(0.0, 3e8))
def test_the_zero3_schedule_is_the_first_ones(seed, units, steps, preset, reuse):
    rng = random.Random(seed)
    s = _random_seq(rng, units, steps)
    a, b = rng.random() * 50, rng.random() * 1e-5
    gather = lambda p: a + b * p              # noqa: E731
    reduce = lambda p: 2 * a + b * p          # noqa: E731
    edge = sum(rng.sample(s.params, rng.randrange(0, units + 1)))     # a reuse distance reached exactly
    for cfg in (z3.PRESETS[preset], dataclasses.replace(z3.PRESETS[preset], max_reuse_params=reuse,
                                                        prefetch_params=reuse / 2, max_live_params=reuse * 3),
                dataclasses.replace(z3.PRESETS[preset], max_reuse_params=edge, prefetch_params=edge,
                                    max_live_params=edge * 2)):
        steps_ = [(u, c, False) for u, c in s.fwd] + list(s.bwd)
        assert z3._keeps(steps_, s.params, cfg.max_reuse_params) == z3ref._keeps(steps_, s.params, cfg.max_reuse_params)
        try:
            want = z3ref.schedule(s, cfg, gather, reduce)
        except Exception as e:                 # a stall: the fast one stalls alike
            with pytest.raises(type(e)):
                z3.schedule(s, cfg, gather, reduce)
            continue
        assert repr(z3.schedule(s, cfg, gather, reduce)) == repr(want)


def test_the_zero3_schedule_of_real_chunks_is_the_first_ones(monkeypatch):
    job = _job(zero=3, tp=1, pp=1, dp=8, recompute="selective")
    m = _model(job, monkeypatch, reference=False, cache=False)
    (chunk,) = m.chunks(job)
    assert chunk.zero_seq is not None and len(chunk.zero_seq.fwd) > 20
    g = m.comms.affine("all_gather", list(range(8)))
    for cfg in z3.PRESETS.values():
        assert repr(z3.schedule(chunk.zero_seq, cfg, g, g)) == repr(z3ref.schedule(chunk.zero_seq, cfg, g, g))
