"""SCALE-Sim 3.0.0's .cfg read against its declared schema (sim/scalesim/config_schema.py):
SCALE-Sim's own sample configs read, each key SCALE-Sim reads is declared, and a bad file
is refused in one line naming the file, line, section and key. Expected numbers come from
the config text itself (a regex over its lines), not from the reader."""

import re

import pytest

from sim.scalesim.config import read_config
from sim.scalesim.config_schema import SECTIONS, ScaleSimDoc, json_schema
from workloads import HwsimError

# scale-sim-v3 configs/scale.cfg (SCALE-Sim 3.0.0's sample: CALC mode)
SCALE = """[general]
run_name = scale_example_run_32x32_ws

[architecture_presets]
ArrayHeight:    32
ArrayWidth:     32
IfmapSramSzkB:   64
FilterSramSzkB:  64
OfmapSramSzkB:   64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : ws
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

# scale-sim-v3 configs/google.cfg (USER mode: the DRAM bandwidth and the banks are read)
GOOGLE = """[general]
run_name = GoogleTPU_v1_os

[architecture_presets]
ArrayHeight:    256
ArrayWidth:     256
IfmapSramSzkB:    6144
FilterSramSzkB:   6144
OfmapSramSzkB:    2048
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : os
Bandwidth : 10
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: USER
UseRamulatorTrace: False
"""

# scale-sim-v3 configs/eyeriss.cfg (no [layout]; keys SCALE-Sim itself does not read)
EYERISS = """[general]
run_name = eyeriss

[architecture_presets]
ArrayHeight:    12
ArrayWidth:     14
IfmapSramSzkB:    36
FilterSramSzkB:   36
OfmapSramSzkB:    36
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : ws
Bandwidth : 10
OnChipMemoryBanks:   1
OnChipMemoryBankPorts:   2
ReadRequestBuffer: 128
WriteRequestBuffer: 128

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

# scale-sim-v3 configs/scale_layout.cfg (no [sparsity], no UseRamulatorTrace)
SCALE_LAYOUT = """[general]
run_name = scale_example_run_32x32_os

[architecture_presets]
ArrayHeight:    128
ArrayWidth:     128
IfmapSramSzkB:   256 
FilterSramSzkB:  256
OfmapSramSzkB:   256
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 64
Dataflow : os

[layout]
IfmapCustomLayout: False
FilterCustomLayout: False
IfmapSRAMBankBandwidth: 64
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterSRAMBankBandwidth: 640
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[run_presets]
InterfaceBandwidth: USER"""

STOCK = {"scale.cfg": SCALE, "google.cfg": GOOGLE, "eyeriss.cfg": EYERISS, "scale_layout.cfg": SCALE_LAYOUT}

# The keys scale-sim-v3 scalesim/scale_config.py (scale_config.read_conf_file) reads, as it spells them
# (configparser reads keys without regard to case).
SCALESIM_READS = {
    "general": ["run_name"],
    "run_presets": ["InterfaceBandwidth", "UseRamulatorTrace"],
    "architecture_presets": ["ArrayHeight", "ArrayWidth", "ifmapsramszkB", "filtersramszkB", "ofmapsramszkB",
                             "IfmapOffset", "FilterOffset", "OfmapOffset", "Dataflow", "ReadRequestBuffer",
                             "WriteRequestBuffer", "Bandwidth", "TopologyCsvLoc"],
    "layout": ["IfmapCustomLayout", "FilterCustomLayout", "IfmapSRAMBankBandwidth", "IfmapSRAMBankNum",
               "IfmapSRAMBankPort", "FilterSRAMBankBandwidth", "FilterSRAMBankNum", "FilterSRAMBankPort"],
    "sparsity": ["SparsitySupport", "SparseRep", "OptimizedMapping", "BlockSize", "RandomNumberGeneratorSeed"],
}


def _value(text: str, key: str) -> str:
    """The text after ``key:`` (or ``key =``) in ``text``."""
    m = re.search(rf"^{key}\s*[:=]\s*(.*?)\s*$", text, re.M)
    assert m, key
    return m.group(1)


def _line(text: str, start: str) -> int:
    return next(n for n, x in enumerate(text.splitlines(), 1) if x.startswith(start))


def _write(tmp_path, text: str, name: str = "c.cfg"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _refused(p) -> str:
    with pytest.raises(HwsimError) as e:
        read_config(p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(p)), msg
    return msg


@pytest.mark.parametrize("name", sorted(STOCK))
def test_stock_configs_read(tmp_path, name):
    text = STOCK[name]
    cfg = read_config(_write(tmp_path, text, name))
    assert cfg.run_name == _value(text, "run_name")
    assert (cfg.rows, cfg.cols) == (int(_value(text, "ArrayHeight")), int(_value(text, "ArrayWidth")))
    assert (cfg.ifmap_kb, cfg.filter_kb, cfg.ofmap_kb) == tuple(int(_value(text, f"{x}SramSzkB"))
                                                                for x in ("Ifmap", "Filter", "Ofmap"))
    assert (cfg.ifmap_offset, cfg.filter_offset, cfg.ofmap_offset) == tuple(int(_value(text, f"{x}Offset"))
                                                                            for x in ("Ifmap", "Filter", "Ofmap"))
    assert cfg.dataflow == _value(text, "Dataflow")
    user = _value(text, "InterfaceBandwidth") == "USER"
    assert cfg.user_bandwidth is user
    if user:
        assert cfg.bandwidths == (int(_value(text, "Bandwidth")),)
        assert (cfg.ifmap_bank_bw, cfg.filter_bank_bw, cfg.ifmap_banks, cfg.filter_banks) == tuple(
            int(_value(text, k)) for k in ("IfmapSRAMBankBandwidth", "FilterSRAMBankBandwidth", "IfmapSRAMBankNum",
                                           "FilterSRAMBankNum"))
    else:       # CALC mode reads no DRAM bandwidth nor banks (hwsim's defaults stay)
        assert cfg.bandwidths == () and (cfg.ifmap_banks, cfg.filter_banks) == (1, 1)


def test_every_key_scalesim_reads_is_declared():
    for section, keys in SCALESIM_READS.items():
        fields = {f.lower() for f in SECTIONS[section].model_fields}
        assert {k.lower() for k in keys} <= fields, section
    assert set(SECTIONS) == set(SCALESIM_READS) | {"network_presets"}


def test_keys_are_read_without_case(tmp_path):
    cfg = read_config(_write(tmp_path, SCALE.replace("ArrayHeight:    32", "arrayheight: 7")))
    assert cfg.rows == 7


def test_misspelt_key_names_the_nearest_field_and_line(tmp_path):
    text = SCALE.replace("ArrayHeight:", "ArrayHieght:")
    msg = _refused(_write(tmp_path, text))
    assert msg.endswith(f"c.cfg:{_line(text, 'ArrayHieght')}: [architecture_presets] ArrayHieght: unknown field; "
                        "did you mean ArrayHeight?"), msg


def test_misspelt_section_names_the_nearest(tmp_path):
    text = GOOGLE.replace("[layout]", "[layouts]")
    msg = _refused(_write(tmp_path, text))
    assert msg.endswith(f"c.cfg:{_line(text, '[layouts]')}: [layouts]: unknown section; did you mean layout?"), msg


@pytest.mark.parametrize("old, new, rule", [
    ("ArrayWidth:     32", "ArrayWidth: wide", "ArrayWidth: must be an integer >= 1, got 'wide'"),
    ("ArrayWidth:     32", "ArrayWidth: 32.5", "ArrayWidth: must be an integer >= 1, got '32.5'"),
    ("ArrayWidth:     32", "ArrayWidth: 0", "ArrayWidth: must be an integer >= 1, got 0"),
    ("FilterOffset:   10000000", "FilterOffset: -1", "FilterOffset: must be an integer >= 0, got -1"),
    ("Dataflow : ws", "Dataflow : xs", "Dataflow: unknown Dataflow 'xs'; one of 'ws', 'os', 'is'"),
    ("InterfaceBandwidth: CALC", "InterfaceBandwidth: FAST",
     "InterfaceBandwidth: unknown InterfaceBandwidth 'FAST'; one of 'USER', 'CALC'"),
])
def test_wrong_type_or_range_is_refused_in_one_line(tmp_path, old, new, rule):
    text = SCALE.replace(old, new)
    key = new.split(":")[0].strip()
    section = "run_presets" if key == "InterfaceBandwidth" else "architecture_presets"
    msg = _refused(_write(tmp_path, text))
    assert f"c.cfg:{_line(text, new)}: [{section}] {rule}" in msg, msg


def test_user_bandwidth_needs_its_keys(tmp_path):
    text = GOOGLE.replace("Bandwidth : 10", "Bandwidth : 10,0")
    assert (f"c.cfg:{_line(text, 'Bandwidth')}: [architecture_presets] Bandwidth[1]: must be an integer >= 1, got 0"
            in _refused(_write(tmp_path, text)))
    text = GOOGLE.replace("Bandwidth : 10\n", "")
    assert "c.cfg: [architecture_presets] Bandwidth: missing" in _refused(_write(tmp_path, text))
    text = GOOGLE.replace("IfmapSRAMBankNum: 10\n", "")
    assert "c.cfg: [layout] IfmapSRAMBankNum: missing" in _refused(_write(tmp_path, text))
    # CALC mode reads neither: eyeriss.cfg has no [layout]
    assert not read_config(_write(tmp_path, EYERISS)).user_bandwidth


@pytest.mark.parametrize("text, section, key, reason", [
    # configs/google_ramulator.cfg is google.cfg with this line
    (GOOGLE.replace("UseRamulatorTrace: False", "UseRamulatorTrace: True"), "run_presets", "UseRamulatorTrace",
     "Ramulator traces are not supported; set False"),
    # configs/sparsity.cfg turns it on
    (SCALE.replace("SparsitySupport : false", "SparsitySupport : true"), "sparsity", "SparsitySupport",
     "sparsity is not supported in compatibility mode; set false"),
    # configs/rebuttal_test_*.cfg and tpuv5e_downscale.cfg turn these on
    (GOOGLE.replace("IfmapCustomLayout: False", "IfmapCustomLayout: True"), "layout", "IfmapCustomLayout",
     "custom layouts are not supported; set False"),
    (GOOGLE.replace("FilterCustomLayout: False", "FilterCustomLayout: yes"), "layout", "FilterCustomLayout",
     "custom layouts are not supported; set False"),
])
def test_what_hwsim_cannot_honour_is_refused(tmp_path, text, section, key, reason):
    msg = _refused(_write(tmp_path, text))
    assert msg.endswith(f"c.cfg:{_line(text, key)}: [{section}] {key}: {reason}"), msg


def test_flags_read_as_scalesim_reads_them(tmp_path):
    # SCALE-Sim turns Ramulator on only for the exact text 'True', and sparsity for 'true' in any case
    assert read_config(_write(tmp_path, SCALE.replace("UseRamulatorTrace: False", "UseRamulatorTrace: true")))
    assert "SparsitySupport" in _refused(_write(tmp_path, SCALE.replace("SparsitySupport : false",
                                                                         "SparsitySupport : TRUE")))
    # the sparsity settings are SCALE-Sim's, checked though unused while sparsity is off
    assert "SparseRep: unknown SparseRep 'coo'" in _refused(_write(tmp_path, SCALE.replace("ellpack_block", "coo")))


def test_network_presets_and_default_section(tmp_path):
    # SCALE-Sim writes [network_presets] TopologyCsvLoc (scale_config.write_conf_file); -t names the topology
    text = SCALE + '\n[network_presets]\nTopologyCsvLoc = "./topologies/conv_nets/alexnet.csv"\n'
    assert read_config(_write(tmp_path, text)).rows == int(_value(SCALE, "ArrayHeight"))
    # a [DEFAULT] key applies where the section has it (configparser's rule); a misspelt one is refused
    assert read_config(_write(tmp_path, "[DEFAULT]\nIfmapSRAMBankPort: 1\n" + GOOGLE)).user_bandwidth
    msg = _refused(_write(tmp_path, "[DEFAULT]\nIfmapSRAMBankPrt: 1\n" + GOOGLE))
    assert msg.endswith("c.cfg:2: [DEFAULT] IfmapSRAMBankPrt: unknown field; did you mean IfmapSRAMBankPort?"), msg


def test_json_schema_is_the_models():
    s = json_schema()
    assert s["$schema"].startswith("https://json-schema.org/") and s["additionalProperties"] is False
    assert set(s["properties"]) == set(SECTIONS)
    arch = s["$defs"]["ArchitecturePresets"]["properties"]
    assert arch["ArrayHeight"]["minimum"] == 1 and arch["IfmapOffset"]["minimum"] == 0
    assert arch["Dataflow"]["enum"] == ["ws", "os", "is"]
    assert s["$defs"]["RunPresets"]["properties"]["UseRamulatorTrace"]["const"] is False
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(s)
    doc = ScaleSimDoc.model_validate({"general": {"run_name": "r"}, "run_presets": {"InterfaceBandwidth": "USER"},
                                      "architecture_presets": {
                                          "ArrayHeight": "4", "ArrayWidth": "4", "IfmapSramSzkB": "1",
                                          "FilterSramSzkB": "1", "OfmapSramSzkB": "1", "IfmapOffset": "0",
                                          "FilterOffset": "100", "OfmapOffset": "200", "Dataflow": "ws",
                                          "Bandwidth": "4"},
                                      "layout": {"IfmapSRAMBankBandwidth": "4", "FilterSRAMBankBandwidth": "4",
                                                 "IfmapSRAMBankNum": "1", "FilterSRAMBankNum": "1"}})
    given = doc.model_dump(exclude_unset=True)
    jsonschema.validate(given, s)
    del given["architecture_presets"]["Bandwidth"]          # USER mode needs it, in the schema as in the reader
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(given, s)
