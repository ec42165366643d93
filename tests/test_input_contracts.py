"""Issue 33, "no bad input gives an answer": each input below was once accepted silently;
now each exits 2 with one line naming the file, the field and the fix, while its valid
neighbour still runs."""

from __future__ import annotations

import copy
import json

import pytest

from analysis.cli import main


def _refused(capsys, args, *words):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, (args, err)
    assert err.startswith("hwsim: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)
    return err


def _accepted(capsys, args):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 0, (args, err)


# ---- saved traces -------------------------------------------------------------------
@pytest.fixture
def trace(tmp_path, capsys):
    """The JSON document ``hwsim lower gemm:4,4,4`` writes, and a writer of edited copies."""
    t = tmp_path / "t.json"
    assert main(["lower", "gemm:4,4,4", "-o", str(t)]) == 0
    capsys.readouterr()
    doc = json.loads(t.read_text())

    def write(edit, name="bad.json"):
        d = copy.deepcopy(doc)
        edit(d)
        p = tmp_path / name
        p.write_text(json.dumps(d))
        return str(p)

    return doc, write


def _sim(path):
    return ["simulate", path, "--arch", "systolic-16"]


def test_the_unedited_trace_runs(trace, capsys):
    _, write = trace
    _accepted(capsys, _sim(write(lambda d: None)))


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["ops"][0]["operands"][0].__setitem__("densty", 0.1),
     ["bad.json", "ops[0] (gemm).operands[0].densty: unknown field; did you mean density?"]),
    (lambda d: d["ops"][0].__setitem__("copeis", 2),
     ["bad.json", "ops[0] (gemm).copeis: unknown field; did you mean copies?"]),
    (lambda d: d.__setitem__("opps", []), ["bad.json: opps: unknown field; did you mean ops?"]),
    (lambda d: d["ops"][0].__setitem__("zzzz", 1), ["zzzz: unknown field; known: copies, dims"]),
    (lambda d: d.__setitem__("batch", 1e12), ["bad.json: batch: must be an integer >= 1, got 1000000000000.0"]),
    (lambda d: d.__setitem__("batch", "8"), ["bad.json: batch: must be an integer >= 1, got '8'"]),
    (lambda d: d.__setitem__("batch", 0), ["bad.json: batch: must be an integer >= 1"]),
    (lambda d: d["ops"][0].__setitem__("operands", []),
     ["bad.json", "ops[0] (gemm).operands:", "missing input, and weight or input2", "roles given: none"]),
    (lambda d: d["ops"][0]["operands"].pop(1),
     ["ops[0] (gemm).operands:", "missing weight or input2", "roles given: input, output"]),
])
def test_a_bad_trace_is_refused_in_one_line(trace, capsys, edit, words):
    _, write = trace
    _refused(capsys, _sim(write(edit)), *words)


def test_the_fields_of_each_trace_version_are_its_own(trace, capsys):
    """Version 3 added ``structure``: a version 2 file holding it is refused with why; older
    versions without it still load, version 1 with its ``repeat`` too."""
    _, write = trace

    def v2(d, structure=False):
        d["version"] = 2
        if structure:
            d["ops"][0]["operands"][1]["structure"] = "2:4"

    _accepted(capsys, _sim(write(v2, "v2.json")))
    _refused(capsys, _sim(write(lambda d: v2(d, True))),
             "operands[1].structure: unknown field; structure was added in trace version 3, this file is version 2")

    def v1(d, extra=None):
        d["version"] = 1
        for op in d["ops"]:
            for k in ("phase", "copies", "steps", "producers"):
                op.pop(k)
            op["repeat"] = 1
            if extra:
                op[extra] = 1
        d.pop("tensors", None)

    _accepted(capsys, _sim(write(v1, "v1.json")))
    _refused(capsys, _sim(write(lambda d: v1(d, "repaet"))), "ops[0] (gemm).repaet: unknown field; did you mean repeat?")
    # a version 3 op field in a version 1 file: its value would be ignored, so it is refused
    _refused(capsys, _sim(write(lambda d: v1(d, "copies"))), "copies: unknown field; copies was added in trace version 2")


def test_a_bmm_with_input2_and_a_kept_structure_still_load(trace, capsys):
    _, write = trace

    def bmm(d):
        w = d["ops"][0]["operands"][1]
        w["role"], w["shape"] = "input2", [4, 4]

    _accepted(capsys, _sim(write(bmm, "bmm.json")))
    _accepted(capsys, _sim(write(lambda d: d["ops"][0]["operands"][1].update(structure="2:4", density=0.5), "s.json")))


# ---- arch YAML: duplicate keys ---------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("base: systolic-16\nrows: 8\nrows: 16\n", ["a.yaml:3: rows: given twice (lines 2 and 3)", "keep one"]),
    ("base: systolic-16\npe_reg_bytes:\n  weight: 4\n  weight: 8\n",
     ["a.yaml:4: pe_reg_bytes.weight: given twice (lines 3 and 4)"]),
    ("base: systolic-16\npe_reg_bytes: {weight: 4, weight: 8}\n",
     ["a.yaml:2: pe_reg_bytes.weight: given twice (both on line 2)"]),
    ("base: systolic-16\nbase: tpu-v1\n", ["a.yaml:2: base: given twice"]),
])
def test_a_key_given_twice_is_refused_at_every_level(tmp_path, capsys, text, words):
    p = tmp_path / "a.yaml"
    p.write_text(text)
    _refused(capsys, ["simulate", "gemm:64,64,64", "--arch", str(p)], *words)


def test_a_merge_key_may_be_overridden(tmp_path, capsys):
    """``<<: *anchor`` then a key of the anchor is an override YAML allows, not a repeat."""
    p = tmp_path / "a.yaml"
    p.write_text("base: systolic-16\npe_reg_bytes:\n  <<: {weight: 4}\n  weight: 8\n")
    _accepted(capsys, ["simulate", "gemm:64,64,64", "--arch", str(p)])


def test_a_misspelt_arch_field_is_named_with_its_fix(tmp_path, capsys):
    p = tmp_path / "a.yaml"
    p.write_text("base: systolic-16\nrwos: 8\n")
    _refused(capsys, ["simulate", "gemm:64,64,64", "--arch", str(p)],
             "a.yaml:2: rwos: unknown field 'rwos' for SystolicArch; did you mean rows?")


# ---- arch YAML: cross-field rules -------------------------------------------------------
def _arch(tmp_path, text):
    p = tmp_path / "a.yaml"
    p.write_text(text)
    return ["simulate", "gemm:64,64,64", "--arch", str(p)]


@pytest.mark.parametrize("text, words", [
    ("base: systolic-16\nacc_bits: 4\n",
     ["a.yaml:2: acc_bits:", "cannot hold one product of two 8-bit operands (16 bits)", "at least 2 x word_bits = 16"]),
    ("base: systolic-16\nacc_bits: 15\n", ["acc_bits:", "at least 2 x word_bits = 16"]),
    ("base: systolic-16\nword_bits: 32\n", ["acc_bits: 32 bits cannot hold one product of two 32-bit operands"]),
    ("base: systolic-16\nfilter_sram_kib: 0.001\n",
     ["a.yaml:2: filter_sram_kib:", "cannot hold one array edge of weights", "max(rows, cols) = 16 words of 8 bits",
      "at least 0.03125 KiB (32 bytes)"]),
    ("base: systolic-16\nifmap_sram_kib: 0.001\n", ["ifmap_sram_kib:", "one array edge of inputs"]),
    ("base: eie-64\npointer_bits: 1\n",
     ["a.yaml:2: pointer_bits: 1 bit cannot address the up to 64 entries one column has on a PE", "at least 7 bits"]),
    ("base: eie-64\nact_regs: 128\npointer_bits: 7\n", ["pointer_bits:", "at least 8 bits"]),
    ("base: a100\ngeneration: pascal\n",
     ["a.yaml:2: generation:", "no tensor-core data for 'pascal'", "known: volta, turing, ampere, hopper"]),
])
def test_an_impossible_design_is_refused(tmp_path, capsys, text, words):
    _refused(capsys, _arch(tmp_path, text), *words)


@pytest.mark.parametrize("text", [
    "base: systolic-16\nacc_bits: 16\n",                 # exactly one int8 x int8 product
    "base: systolic-16\nword_bits: 16\n",                # 16-bit operands, 32-bit accumulators
    "base: systolic-16\nfilter_sram_kib: 0.03125\n",     # exactly one edge per buffer half
    "base: systolic-16\nifmap_sram_kib: 0.03125\nofmap_sram_kib: 0.01\n",   # accumulators: one row per chunk
    "base: eie-64\npointer_bits: 7\n",                   # counts 0..64
    "base: eie-64\nnum_pes: 3\n",                        # rows go to PE r % num_pes: any count works
    "base: eie-64\nnum_pes: 3\nact_regs: 5\npointer_bits: 3\n",
    "base: a100\ngeneration: hopper\n",
    "base: a100\ngeneration: ''\n",
])
def test_the_valid_neighbours_still_run(tmp_path, capsys, text):
    _accepted(capsys, _arch(tmp_path, text))


def test_every_preset_keeps_the_rules():
    from sim.eie.arch import PRESETS as EIE
    from sim.gpu.arch import GENERATIONS
    from sim.gpu.arch import PRESETS as GPU
    from sim.systolic.arch import PRESETS as SYSTOLIC

    assert {g.generation for g in GPU.values()} <= set(GENERATIONS)
    assert all(a.acc_bits >= 2 * a.word_bits for a in SYSTOLIC.values())
    assert all(2 ** e.pointer_bits > e.act_regs for e in EIE.values())


def test_the_examples_still_load():
    """Every example arch file keeps the new rules (a rule a shipped example breaks is wrong)."""
    from pathlib import Path

    from sim.registry import resolve_arch
    from workloads.yamlio import load_yaml

    root = Path(__file__).resolve().parent.parent / "examples"
    for p in sorted(root.glob("**/*.yaml")):
        doc = load_yaml(p)                   # no duplicate keys in any example
        if isinstance(doc, dict) and "base" in doc and "models" not in doc:     # an arch file, not a study
            resolve_arch(str(p))


# ---- cross-field rules met where the objects meet (issue 33, item 2) ---------------------------
@pytest.mark.parametrize("edit, words", [
    (lambda d: d.__setitem__("batch", 10 ** 12),          # 3.6e16 inferences/s from a 4-row GEMM, once
     ["bad.json: batch: 1000000000000 samples, but the input (input_shape [4, 4]) has 4 rows", "set it to 4 or lower"]),
    (lambda d: d.update(batch=10 ** 12, input_shape=[]),
     ["bad.json: batch: 1000000000000 samples, but the ops do 64 operations in all", "fewer than one per sample"]),
])
def test_a_batch_the_ops_do_not_process_is_refused(trace, capsys, edit, words):
    _, write = trace
    _refused(capsys, _sim(write(edit)), *words)
    _accepted(capsys, _sim(write(lambda d: d.__setitem__("batch", 4), "ok.json")))     # the input's 4 rows


def test_a_spatial_unrolling_for_no_op_is_refused(tmp_path, capsys):
    """An ``op_unrollings`` entry naming neither an op of the workload nor an op kind was ignored."""
    p = tmp_path / "s.yaml"
    p.write_text("base: eyeriss-like\nop_unrollings: {nolayer: 'C,K'}\n")
    _refused(capsys, ["simulate", "gemm:16,16,16:int8", "--arch", str(p)],
             "s.yaml: op_unrollings.nolayer: names no op of gemm:16,16,16:int8 (gemm)", "no op kind (gemm, conv",
             "correct the name or remove the entry")
    p.write_text("base: eyeriss-like\nop_unrollings: {gemm: 'C,K', conv: 'C,K'}\n")     # by name or by kind
    _accepted(capsys, ["simulate", "gemm:16,16,16:int8", "--arch", str(p)])


# ---- lowering estimates what it will allocate before it allocates (issue 33, item 4) -----------
@pytest.mark.parametrize("args, words", [
    (["lower", "lstm_lm", "--seq-len", "1000000000"],          # an allocator error (exit 70) after 33 s, once
     ["lowering lstm_lm at --seq-len 1,000,000,000", "TB of memory", "hwsim --max-memory SIZE"]),
    (["lower", "lenet300", "--batch", "1000000000"], ["lowering lenet300 at --batch 1,000,000,000", "of memory"]),
    (["lower", "resnet18", "--batch", "1000000", "--train"], ["lowering resnet18 at --batch 1,000,000", "of memory"]),
    (["--max-time", "10", "lower", "lstm_lm", "--seq-len", "1000"],     # 30,486 recorded ops: about 15 s
     ["lowering lstm_lm at --seq-len 1,000 (on real tensors: ", "ops) would take about", "the limit is 10 s"]),
])
def test_a_lowering_over_the_limits_is_refused_before_it_allocates(capsys, args, words):
    _refused(capsys, [*args, "--no-cache"], *words)


def test_a_big_batch_of_a_zoo_cnn_lowers_on_the_meta_device_without_allocating(tmp_path, capsys):
    """resnet18 at batch 10^6 (a 602 GB input: an allocator error, exit 70, once) is lowered as
    the meta device's shapes, as a big batch of a zoo CNN was: its factory now runs there too,
    so the input is never allocated; a request the probe finds small runs as before."""
    from workloads.spec import resolve

    wl = resolve("resnet18", batch=1_000_000)
    assert wl.batch == 1_000_000 and wl.input_shape == (1_000_000, 3, 224, 224)
    assert resolve("resnet18", batch=64).macs == 64 * resolve("resnet18").macs       # meta and real agree
    _accepted(capsys, ["lower", "lenet300", "--batch", "1000", "--no-cache"])
