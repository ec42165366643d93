"""SCALE-Sim's ``.cfg`` file: the array, its SRAMs and the interface bandwidth mode.

configparser reads the file as SCALE-Sim does (keys without regard to case); the sections
are then validated against SCALE-Sim 3.0.0's declared schema (:mod:`.config_schema`), and
errors name the file, the line and the key as written::

    c.cfg:5: [architecture_presets] ArrayHieght: unknown field; did you mean ArrayHeight?
"""

from __future__ import annotations

import configparser
import dataclasses
import re
import typing
from dataclasses import dataclass
from pathlib import Path

from workloads.errors import HwsimError

if typing.TYPE_CHECKING:
    from pydantic import ValidationError

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


class _Where:
    """Where each section and key is set in the file's text, for the messages."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.sections: dict[str, int] = {}
        self.keys: dict[tuple[str, str], tuple[int, str]] = {}    # (section, key in lower case) -> (line, key)
        section = ""
        for n, line in enumerate(text.splitlines(), 1):
            m = re.match(r"\s*\[([^\]]+)\]", line)
            if m:
                section = m.group(1).strip()
                self.sections.setdefault(section, n)
                continue
            m = re.match(r"\s*([^:=#;\s][^:=]*?)\s*[:=]", line)
            if m:
                self.keys.setdefault((section, m.group(1).strip().lower()), (n, m.group(1).strip()))

    def at(self, section: str, key: str = "") -> str:
        """``FILE:LINE: [section] `` where ``key`` (or the section) is set; no line where it is not."""
        n = self.keys.get((section, key.lower()), (0, ""))[0] if key else self.sections.get(section, 0)
        return f"{self.path}{f':{n}' if n else ''}: [{section}]{' ' if key else ''}"

    def key(self, section: str, key: str) -> str:
        """``FILE:LINE: [section] key``, the key as the file writes it."""
        return f"{self.at(section, key)}{self.written(section, key)}"

    def written(self, section: str, key: str) -> str:
        """``key`` as the file writes it (configparser has lowered it)."""
        return self.keys.get((section, key.lower()), (0, key))[1]


def read_config(path: str | Path) -> ScaleSimConfig:
    """Parse a SCALE-Sim ``.cfg``; errors name the file, line, section and key, in one line."""
    from pydantic import ValidationError

    from workloads.yamlio import read_text

    from .config_schema import ScaleSimDoc

    p = Path(path)
    cp = configparser.ConfigParser()
    if not p.is_file():
        raise HwsimError(f"{p}: config file not found")
    text = read_text(p, "SCALE-Sim config")
    where = _Where(p, text)
    try:
        cp.read_string(text, source=str(p))
        doc = _document(cp, where)
    except configparser.Error as e:
        raise HwsimError(f"{p}: not a valid SCALE-Sim config ({e.message.splitlines()[0]})") from None
    try:
        d = ScaleSimDoc.model_validate(doc)
    except ValidationError as e:
        raise HwsimError(_explain(e, where)) from None
    a = d.architecture_presets
    cfg = ScaleSimConfig(run_name=d.general.run_name, rows=a.ArrayHeight, cols=a.ArrayWidth, ifmap_kb=a.IfmapSramSzkB,
                         filter_kb=a.FilterSramSzkB, ofmap_kb=a.OfmapSramSzkB, ifmap_offset=a.IfmapOffset,
                         filter_offset=a.FilterOffset, ofmap_offset=a.OfmapOffset, dataflow=a.Dataflow,
                         user_bandwidth=d.run_presets.InterfaceBandwidth == "USER")
    if not cfg.user_bandwidth:       # CALC mode ignores the rest, as SCALE-Sim does
        return cfg
    lay = d.layout                   # USER mode has its banks given (the schema says so)
    return dataclasses.replace(cfg, bandwidths=tuple(a.Bandwidth), ifmap_bank_bw=lay.IfmapSRAMBankBandwidth,
                               filter_bank_bw=lay.FilterSRAMBankBandwidth, ifmap_banks=lay.IfmapSRAMBankNum,
                               filter_banks=lay.FilterSRAMBankNum)


def _document(cp: configparser.ConfigParser, where: _Where) -> dict[str, dict[str, str]]:
    """The file's sections as the schema's document, each key under its field's name. A
    section or key SCALE-Sim does not define is refused here, with the nearest one, before
    the values are checked (a misspelt key would otherwise read as the real one missing).
    A ``[DEFAULT]`` key applies to the sections that have it, as in configparser."""
    from workloads.fields import check_known, suggest

    from .config_schema import SECTIONS

    fields = {s: {f.lower(): f for f in m.model_fields} for s, m in SECTIONS.items()}
    defaults = cp.defaults()
    for k in defaults:
        if not any(k in f for f in fields.values()):
            check_known([where.written(cp.default_section, k)], {f for m in SECTIONS.values() for f in m.model_fields},
                        where.at(cp.default_section, k))
    doc: dict[str, dict[str, str]] = {}
    for section in cp.sections():
        if section not in SECTIONS:
            raise HwsimError(f"{where.at(section)}: unknown section; {suggest(section, SECTIONS)}")
        known = fields[section]
        doc[section] = {}
        for k, v in cp.items(section):
            if k not in known and k not in defaults:
                check_known([where.written(section, k)], known.values(), where.at(section, k))
            if k in known:
                doc[section][known[k]] = v
    return doc


def _explain(e: ValidationError, where: _Where) -> str:
    """The first error of ``e`` in one line, at the section and key it concerns."""
    from workloads.declared import first_error, message

    from .config_schema import ScaleSimDoc

    loc = first_error(e)["loc"]
    if len(loc) == 1:                 # a section left out
        return f"{where.path}: missing section [{loc[0]}]"
    text = message(ScaleSimDoc, e)
    if len(loc) > 1:                  # section.key: ... (or section.key[i]: ...)
        return f"{where.key(str(loc[0]), str(loc[1]))}{text.removeprefix(f'{loc[0]}.{loc[1]}')}"
    m = re.match(r"\[(\w+)\] (\w+)(.*)", text)          # a rule across sections names its key
    return f"{where.key(m.group(1), m.group(2))}{m.group(3)}" if m else f"{where.path}: {text}"
