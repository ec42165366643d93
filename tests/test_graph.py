"""Trace v2's graph: producers from real tensor identity (checked against torch.fx's data
flow), copies vs steps, validation of the graph, v1 migration, and the schedule."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.fx as fx
from torch import nn

from sim.graph import schedule
from sim.registry import simulate
from workloads import TraceError, Workload
from workloads.build import gemm_op, vector_op
from workloads.lower import lower
from workloads.trace import Op, chain

V1 = Path(__file__).parent / "fixtures" / "trace_v1"


# ---- producers against torch.fx ------------------------------------------------------------------
def _module_level(nodes: dict[str, list[str]], keep: set[str]) -> dict[str, set[str]]:
    """Collapse a graph to its ``keep`` nodes: each kept node's nearest kept ancestors."""
    memo: dict[str, set[str]] = {}

    def up(n: str) -> set[str]:
        if n not in memo:
            memo[n] = set()
            for p in nodes[n]:
                memo[n] |= {p} if p in keep else up(p)
        return memo[n]
    return {n: up(n) for n in nodes if n in keep}


def _fx_graph(model: nn.Module) -> dict[str, list[str]]:
    """fx node name -> input node names; call_module nodes named like hwsim names ops (the
    k-th call of a module gets the suffix _k)."""
    g = fx.symbolic_trace(model).graph
    calls: dict[str, int] = {}
    name = {}
    for n in g.nodes:
        if n.op == "call_module":
            k = calls.get(n.target, 0)
            calls[n.target] = k + 1
            name[n] = n.target if k == 0 else f"{n.target}_{k}"
        else:
            name[n] = f"fx:{n.name}"
    return {name[n]: [name[a] for a in n.all_input_nodes] for n in g.nodes}


@pytest.mark.parametrize("factory", ["resnet18", "googlenet", "mobilenet_v2"])
def test_producers_match_torch_fx_dataflow(factory):
    """Residual adds, inception concats and inverted residuals: every layer's producers
    (through element-wise and concat ops) are the layers torch.fx says feed it."""
    from workloads.zoo import cnn
    model, x = getattr(cnn, factory)()
    wl = lower(model, x)
    fxg = _fx_graph(model)
    ops = {op.name: list(op.producers) for op in wl.ops}
    layers = set(fxg) & set(ops)
    assert len(layers) > 40
    want = _module_level(fxg, layers)
    got = _module_level(ops, layers)
    assert got == want


def test_views_inplace_and_chunks():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.act = nn.ReLU(inplace=True)
            self.fc = nn.Linear(4 * 6 * 6, 8)
            self.gate = nn.Linear(8, 8)

        def forward(self, x):
            y = self.act(self.conv(x))                     # in place on the conv's output
            h = self.fc(y.flatten(1))                      # through a view
            a, b = self.gate(h).chunk(2, 1)
            a.sigmoid_()                                   # in place on one chunk only
            b.tanh_()
            return a * b + h[:, :4]
    wl = lower(Net(), torch.randn(2, 3, 8, 8))
    p = {op.name: set(op.producers) for op in wl.ops}
    assert p["act"] == {"conv"} and p["fc"] == {"act"} and p["gate"] == {"fc"}
    sig, tanh = wl.ops[4], wl.ops[5]
    assert (sig.op, tanh.op) == ("sigmoid", "tanh")
    assert p[sig.name] == p[tanh.name] == {"gate"}        # not each other: different chunks
    mul = next(o for o in wl.ops if o.op == "mul")
    assert p[mul.name] == {sig.name, tanh.name}
    add = wl.ops[-1]
    assert p[add.name] == {mul.name, "fc"}


def test_repetitions_fold_into_copies_or_steps():
    class Loop(nn.Module):
        def __init__(self, dependent):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.dependent = dependent

        def forward(self, x):
            if self.dependent:                             # each step reads the last
                h = x[0]
                for _ in range(5):
                    h = self.fc(h)
                return h
            return torch.stack([self.fc(x[i]) for i in range(5)])   # five independent inputs
    for dependent in (True, False):
        wl = lower(Loop(dependent), torch.randn(5, 3, 16))
        fc = wl["fc"]
        assert (fc.steps, fc.copies) == ((5, 1) if dependent else (1, 5))
        assert fc.macs == 5 * 3 * 16 * 16                  # five applications either way
        assert "fc" not in fc.producers


def test_lstm_steps_and_acyclic_graph():
    from workloads.spec import resolve
    wl = resolve("lstm_lm", batch=2, seq_len=6)
    hh = wl["lstm.weight_hh_l0"]
    assert (hh.steps, hh.copies) == (6, 1)
    cell = [o for o in wl.ops if o.name.startswith("lstm.") and o.steps == 6]
    assert len(cell) >= 10                                  # the gate GEMM and the cell's vector ops
    # the input GEMM of layer 1 reads layer 0's outputs; the decoder reads layer 1's
    index = {o.name: i for i, o in enumerate(wl.ops)}
    for op in wl.ops:
        assert all(index[p] < index[op.name] for p in op.producers)
    assert wl["lstm.weight_ih_l0"].producers == ("embedding",)


# ---- validation -----------------------------------------------------------------------------------
def _two(p0=(), p1=("a",)):
    return (gemm_op("a", 2, 2, 2, producers=p0), gemm_op("b", 2, 2, 2, producers=p1))


@pytest.mark.parametrize("ops, message", [
    (_two(p1=("zz",)), r"ops\[1\] \(b\)\.producers: names 'zz', which is not an op"),
    (_two(p0=("b",)), r"the graph has a cycle: a -> b -> a|cycle"),
    (_two(p0=("b",), p1=()), "reads an op listed after it"),
])
def test_graph_validation_names_op_and_field(ops, message):
    with pytest.raises(TraceError, match=message):
        Workload("w", ops)


def test_self_loop_and_bad_fields():
    with pytest.raises(TraceError, match="itself"):
        gemm_op("a", 2, 2, 2, producers=("a",))
    with pytest.raises(TraceError, match="steps: must be an integer >= 1"):
        gemm_op("a", 2, 2, 2, steps=0)
    with pytest.raises(TraceError, match="phase"):
        Op("a", "gemm", "linear", {"M": 1, "N": 1, "K": 1}, phase="training")


def test_round_trip_keeps_the_graph(tmp_path):
    ops = chain([gemm_op("a", 4, 8, 8, copies=3), gemm_op("b", 4, 8, 8, steps=7),
                 vector_op("c", "activation", "relu", 32, copies=2, steps=7)])
    wl = Workload("g", ops)
    back = Workload.load(wl.save(tmp_path / "g.json"))
    assert [(o.copies, o.steps, o.producers, o.phase) for o in back.ops] == \
        [(3, 1, (), "forward"), (1, 7, ("a",), "forward"), (2, 7, ("b",), "forward")]
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["version"] == 3 and "structure" not in doc["ops"][0]["operands"][0] and "repeat" not in doc["ops"][0]


def test_a_trace_without_tensors_leaves_an_unrelated_npz_alone(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"the user's own file")
    Workload("w", (gemm_op("a", 2, 2, 2),)).save(tmp_path / "x.json")
    assert (tmp_path / "x.npz").read_bytes() == b"the user's own file"
    assert Workload.load(tmp_path / "x.json").ops[0].name == "a"


# ---- version 1 ------------------------------------------------------------------------------------
def test_v1_traces_migrate():
    lstm = Workload.load(V1 / "lstm_lm.json")
    steps = {o.name: (o.copies, o.steps) for o in lstm.ops}
    assert steps["lstm.weight_hh_l0"] == (1, 6)               # recurrent GEMM: repeat 6 -> 6 steps
    assert steps["lstm.sigmoid"] == (2, 6)                    # twice per step
    assert steps["lstm.stack_2"] == (2, 1)                    # stacking two final states: copies
    assert steps["lstm.weight_ih_l0"] == (1, 1)
    attn = Workload.load(V1 / "attention.json")
    assert [(o.copies, o.steps) for o in attn.ops if o.op == "bmm"] == [(6, 1), (6, 1)]
    # v1 ran ops in list order: each op reads the one before
    assert all(o.producers == (p.name,) for p, o in zip(attn.ops, attn.ops[1:]))


def test_v1_traces_simulate_as_their_current_version_form(tmp_path):
    """Migration loses nothing the simulators read: each version 1 trace, loaded (migrated)
    and saved again as version 3, reloads to the same ops, and every preset family gives
    the re-saved file the same per-op cycles, accesses and operation counts as the migrated
    original.
    What the migration does with ``repeat`` is checked against the v1 files themselves:
    every op's copies x steps is its v1 ``repeat``."""
    for name in ("resnet18", "attention", "vgg_winograd", "lstm_lm"):
        v1 = json.loads((V1 / f"{name}.json").read_text())
        old = Workload.load(V1 / f"{name}.json")
        assert v1["version"] == 1 and [o["name"] for o in v1["ops"]] == [o.name for o in old.ops]
        assert [o["repeat"] for o in v1["ops"]] == [o.copies * o.steps for o in old.ops]
        path = old.save(tmp_path / f"{name}.json")
        doc = json.loads(path.read_text())
        assert doc["version"] == 3 and all("repeat" not in o for o in doc["ops"])
        new = Workload.load(path)
        assert new.ops == old.ops and (new.name, new.batch) == (old.name, old.batch)
        for arch in ("systolic-32", "tpu-v1", "eie-64", "a100"):
            a, b = simulate(old, arch), simulate(new, arch)
            per_op = lambda res: [(r.name, r.cycles, r.accesses, r.ops) for r in res.ops]  # noqa: E731
            assert per_op(a) == per_op(b), (name, arch)
            assert (a.cycles, a.total()) == (b.cycles, b.total()), (name, arch)


# ---- the schedule -----------------------------------------------------------------------------------
def _diamond():
    return (gemm_op("a", 1, 1, 1), gemm_op("b", 1, 1, 1, producers=("a",)),
            gemm_op("c", 1, 1, 1, producers=("a",)), gemm_op("d", 1, 1, 1, producers=("b", "c")))


@pytest.mark.parametrize("occ, limit, start, makespan", [
    ([1, 1, 1, 1], None, [0, 10, 15, 22], 25),          # one op at a time: the sum
    ([0.5] * 4, None, [0, 10, 10, 17], 20),             # b and c together: the critical path
    ([0.6] * 4, None, [0, 10, 15, 22], 25),             # too big to share the machine
    ([0.5] * 4, 1, [0, 10, 15, 22], 25),                # one stream
])
def test_schedule_by_hand(occ, limit, start, makespan):
    tl = schedule(_diamond(), [10, 5, 7, 3], occ, limit)
    assert tl.start.tolist() == start and tl.makespan == makespan
    assert tl.critical_path == 10 + 7 + 3


def test_gpu_streams_overlap_independent_kernels():
    import dataclasses

    from sim.gpu import PRESETS
    ops = (gemm_op("a", 64, 64, 64, bits=16), gemm_op("b", 64, 64, 64, bits=16), gemm_op("c", 64, 64, 64, bits=16))
    wl = Workload("three", ops)                              # independent: no producers
    one = simulate(wl, PRESETS["a100"])
    four = simulate(wl, dataclasses.replace(PRESETS["a100"], streams=4))
    per = one.ops[0].cycles
    assert one.cycles == 3 * per                             # one stream: back to back
    assert four.cycles == per == four.critical_path_cycles   # tiny kernels share the GPU
    chained = simulate(Workload("chain", tuple(chain(ops))), dataclasses.replace(PRESETS["a100"], streams=4))
    assert chained.cycles == 3 * per                         # the graph forbids overlap
    np.testing.assert_array_equal([o.start_cycle for o in chained.ops], [0, per, 2 * per])


def test_tails_overlap_the_next_op_unless_it_reads_the_results():
    """On a one-op-at-a-time machine, b (independent of a) starts in a's 4-cycle tail at 6;
    c reads b, so it waits out b's 2-cycle tail: a read-after-write stall of 2."""
    a = gemm_op("a", 4, 4, 4)
    b = gemm_op("b", 4, 4, 4)
    c = gemm_op("c", 4, 4, 4, producers=("b",))
    tl = schedule([a, b, c], [10, 5, 3], [1.0, 1.0, 1.0], tail=[4, 2, 0])
    assert tl.start.tolist() == [0, 6, 11] and tl.end.tolist() == [10, 11, 14]
    assert tl.raw_stall.tolist() == [0, 0, 2] and tl.makespan == 14
    # a tail longer than the op is the whole op: the next starts with it, never before
    tl = schedule([a, b], [3, 5], [1.0, 1.0], tail=[9, 0])
    assert tl.start.tolist() == [0, 0] and tl.makespan == 5
    # no tails: back to back, as before
    assert schedule([a, b, c], [10, 5, 3], [1.0, 1.0, 1.0]).start.tolist() == [0, 10, 15]
