"""SCALE-Sim's ``.cfg`` file: the array, its SRAMs and the interface bandwidth mode."""

from __future__ import annotations

import configparser
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from workloads.errors import HwsimError

__all__ = ["ScaleSimConfig", "read_config"]


@dataclass(frozen=True)
class ScaleSimConfig:
    run_name: str
    rows: int
    cols: int
    ifmap_kb: int
    filter_kb: int
    ofmap_kb: int
    ifmap_offset: int
    filter_offset: int
    ofmap_offset: int
    dataflow: str
    user_bandwidth: bool
    bandwidths: tuple[int, ...] = ()
    ifmap_bank_bw: int = 10
    filter_bank_bw: int = 10
    ifmap_banks: int = 1
    filter_banks: int = 1


def read_config(path: str | Path) -> ScaleSimConfig:
    """Parse a SCALE-Sim ``.cfg``; errors name the file, section and field."""
    from workloads.yamlio import read_text

    p = Path(path)
    cp = configparser.ConfigParser()
    if not p.is_file():
        raise HwsimError(f"{p}: config file not found")
    text = read_text(p, "SCALE-Sim config")
    try:
        cp.read_string(text, source=str(p))
    except configparser.Error as e:
        raise HwsimError(f"{p}: not a valid SCALE-Sim config ({e.message.splitlines()[0]})") from None
    lines: dict[tuple[str, str], int] = {}          # (section, key) -> line, for the messages
    section = ""
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
            continue
        m = re.match(r"\s*([^:=#;\s][^:=]*?)\s*[:=]", line)
        if m:
            lines.setdefault((section, m.group(1).strip().lower()), n)

    def at(section: str, key: str) -> str:
        """``FILE:LINE: [section] key`` (the line where the key is set, when it is)."""
        n = lines.get((section, key.lower()))
        return f"{p}:{n}: [{section}] {key}" if n else f"{p}: [{section}] {key}"

    def get(section: str, key: str) -> str:
        """The raw value of ``[section] key``, which must be present."""
        if not cp.has_section(section):
            raise HwsimError(f"{p}: missing section [{section}]")
        if not cp.has_option(section, key):
            raise HwsimError(f"{p}: [{section}] {key}: missing")
        return cp.get(section, key).strip()

    def integer(section: str, key: str, low: int) -> int:
        """``[section] key`` as an integer ``>= low``."""
        raw = get(section, key)
        try:
            v = int(raw)
        except ValueError:
            raise HwsimError(f"{at(section, key)}: expected an integer, got {raw!r}") from None
        if v < low:
            raise HwsimError(f"{at(section, key)}: must be >= {low}, got {v}")
        return v

    mode = get("run_presets", "InterfaceBandwidth")
    if mode not in ("USER", "CALC"):
        raise HwsimError(f"{at('run_presets', 'InterfaceBandwidth')}: must be USER or CALC, got {mode!r}")
    if cp.has_option("run_presets", "UseRamulatorTrace") and cp.get("run_presets", "UseRamulatorTrace").strip() == "True":
        raise HwsimError(f"{at('run_presets', 'UseRamulatorTrace')}: Ramulator traces are not supported; set False")
    if cp.has_section("sparsity") and cp.get("sparsity", "SparsitySupport", fallback="false").strip().lower() == "true":
        raise HwsimError(f"{at('sparsity', 'SparsitySupport')}: sparsity is not supported in compatibility mode; set false")
    for key in ("IfmapCustomLayout", "FilterCustomLayout"):
        if cp.has_option("layout", key) and cp.getboolean("layout", key):
            raise HwsimError(f"{at('layout', key)}: custom layouts are not supported; set False")
    a = "architecture_presets"
    df = get(a, "Dataflow")
    if df not in ("ws", "os", "is"):
        raise HwsimError(f"{at(a, 'Dataflow')}: must be ws, os or is, got {df!r}")
    cfg = ScaleSimConfig(run_name=get("general", "run_name"), rows=integer(a, "ArrayHeight", 1),
                         cols=integer(a, "ArrayWidth", 1), ifmap_kb=integer(a, "IfmapSramSzkB", 1),
                         filter_kb=integer(a, "FilterSramSzkB", 1), ofmap_kb=integer(a, "OfmapSramSzkB", 1),
                         ifmap_offset=integer(a, "IfmapOffset", 0), filter_offset=integer(a, "FilterOffset", 0),
                         ofmap_offset=integer(a, "OfmapOffset", 0), dataflow=df, user_bandwidth=mode == "USER")
    if mode != "USER":       # CALC mode ignores the rest, as SCALE-Sim does
        return cfg
    raw = get(a, "Bandwidth")
    try:
        bandwidths = tuple(int(x) for x in raw.split(","))
    except ValueError:
        raise HwsimError(f"{at(a, 'Bandwidth')}: expected comma-separated integers, got {raw!r}") from None
    if min(bandwidths) < 1:
        raise HwsimError(f"{at(a, 'Bandwidth')}: words per cycle must be >= 1, got {raw!r}")
    return dataclasses.replace(cfg, bandwidths=bandwidths,
                               ifmap_bank_bw=integer("layout", "IfmapSRAMBankBandwidth", 1),
                               filter_bank_bw=integer("layout", "FilterSRAMBankBandwidth", 1),
                               ifmap_banks=integer("layout", "IfmapSRAMBankNum", 1),
                               filter_banks=integer("layout", "FilterSRAMBankNum", 1))
