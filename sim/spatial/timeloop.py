"""Read an AccelForge (Timeloop's successor) architecture file as a spatial design.

``--arch timeloop:ARCH.yaml``, in the format of AccelForge 1.0 (``examples/arches/*.yaml``:
``tpu_v4i.yaml``, ``eyeriss.yaml``, ``nvdla.yaml``, ``simple.yaml``; Timeloop v4's successor
from the same group), declared in :mod:`sim.spatial.timeloop_schema`:

* ``arch.nodes``, outermost first: ``!Memory`` nodes are hwsim's levels (reversed: innermost
  first), the outermost one off-chip; ``!Container`` and ``!Memory`` ``spatial`` fanouts are
  the array's dimensions in the order listed (the first hwsim's rows, the second its columns,
  the rest ``extra_dims``; an array of one fanout has one column); the one enabled
  ``!Compute`` (``enabled`` evaluated for a three-tensor Einsum: tpu_v4i's ScalarUnit is off)
  is the MAC, the last node.
* a memory holds ``tensors.keep`` | ``tensors.may_keep`` (set expressions over input, weight
  and output: ``All``, ``~MainMemory``, ``input | output``); one holding none is left out;
  ``size`` bits per instance (``inf`` off-chip); it is one instance per combination of the
  fanouts above it and its own (``served``: the fanouts below it).
* an action's ``energy`` is joules per action of ``bits_per_action`` bits (AccelForge's default
  1), its ``throughput`` actions per second; the MAC's compute throughput (or its
  ``total_latency: sum(a.n_calls for a in actions) / F``) is the clock, so a memory's port is
  ``throughput x bits_per_action / clock`` bits a cycle per instance (``inf``: unbounded,
  2^40). ``total_latency`` is one of AccelForge's forms: ``sum(a.n_calls / a.throughput for a
  in actions)`` (the default: one port, reads and writes take turns), ``max(...)`` (separate
  ports), or ``sum(a.n_calls for a in actions) / N / F`` (one port of N x F actions a second).
  ``leak_power`` (W per instance) is the design's static power.
* a spatial fanout's ``reuse`` (the tensors every loop on it must reuse) gives the unrollings
  the search may use: on a dimension reusing input, K; weight, OY or OX; output, C, FY or FX;
  none, any of K, C, OY, OX; each of those alone, or all of them at once on the dimension
  (``C*FY*FX``: each takes what the ones before it leave, as AccelForge's mapper puts several
  loops on one fanout); a loop on one dimension only, every combination searched (the best
  kept per op).

AccelForge's model, as hwsim's switches say it: outputs at the workload's width at every
level (no wider partial sums: ``acc_bits`` = ``word_bits`` = 8, AccelForge's examples'
``bits_per_value``), every MAC reading and writing the innermost output holder
(``pe_accumulator`` false, ``psum_reads`` "writes"), the innermost input and weight holders
read every MAC (``operand_registers`` "none"), accesses priced by the bit; latency the slowest component's own time (``loading``
"roofline": the MACs' or the busiest port's, no fill or drain); a fanout's ``min_usage: 1``
as AccelForge's mapper takes it, only factors that divide the layer's loops (``factors``
"divisors", then imposed on every fanout); the mapping search minimises energy, as
AccelForge's mapper tutorial does (``Metrics.ENERGY``).

Where the file leaves an energy to AccelForge's estimator plug-ins (``component_class``
with no ``energy``: CACTI, the hwcomponents library), hwsim does not run them: it reads the
file AccelForge resolved (``benchmarks/accelforge_peer.py --resolved DIR`` writes each action's
energy and throughput as AccelForge's ``Spec.calculate_component_costs()`` computed them),
and says so in the design's ``source``; ``component_class: Dummy`` costs nothing.

Refused, with the file and field named: other sections than ``arch`` (the workload is
hwsim's trace; the mapping is searched: ``timeloop:ARCH.yaml:MAPPING.yaml`` is refused),
Jinja beyond ``{% set X = X | default(V) %}`` and ``{{X}}``, per-memory ``bits_per_value``
and ``values_per_action``, spatial ``loop_bounds``, actions other than read, write and
compute, expressions beyond arithmetic, comparisons, ``if``/``else``, ``len`` and
``TENSOR.bits_per_value``. Accepted and not modelled (said in ``source``): ``may_reuse``
(hwsim multicasts along every dimension a level serves), a ``min_usage`` between 0 and 1
(hwsim pads a partial tile). A memory's ``may_keep`` tensors beyond its ``keep`` are its
``bypass``: the search tries the level with and without each.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path
from typing import Any, Callable

from workloads.errors import HwsimError

from .arch import MAX_EXTRA, Level, LevelKind, SpatialArch
from .nest import OPERANDS, RELEVANT
from .timeloop_schema import NODES, Action, Compute, Container, Doc, Memory

__all__ = ["SOURCE_PREFIX", "load", "split", "read", "tensor_set", "evaluate"]

SOURCE_PREFIX = "AccelForge architecture file "
WORD_BITS = 8                # AccelForge's examples' workloads: bits_per_value {All: 8}
UNBOUNDED_BITS = 2.0 ** 20   # a port of infinite throughput, bits per cycle (a Mbit a cycle per instance)
# a stated energy of 0 (tpu_v4i's, nvdla's Register), per access: hwsim's energy search needs
# every level priced (sim.spatial.search), so 0 is written as this, a ten-billionth of a MAC
ZERO_PJ = 1e-12
UNBOUNDED_BYTES = 2.0 ** 40  # an on-chip memory of size inf
ALL = frozenset(OPERANDS)
RESOLVED_MARK = "calculate_component_costs"
# loops a fanout may unroll, by the tensor it must reuse (the loops that tensor does not index)
LOOPS = ("K", "C", "OY", "OX", "FY", "FX")
FREE = ("K", "C", "OY", "OX")
MAX_SEARCHED = 64         # policy: unrollings the search tries per op (each a full temporal search)


def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise HwsimError(f"{where}: {msg}")


def split(spec: str) -> tuple[str, str]:
    """``ARCH.yaml[:MAPPING.yaml]`` -> (architecture path, mapping path or "")."""
    hw, _, mp = spec.partition(".yaml:")
    return (hw + ".yaml", mp) if mp else (hw, "")


def load(spec: str) -> SpatialArch:
    """``ARCH.yaml`` (the part after ``timeloop:``)."""
    from workloads.yamlio import read_text

    arch, mapping = split(spec)
    _need(not mapping, mapping, "AccelForge / Timeloop mapping files are not read: hwsim searches the mapping "
                                "itself; give the architecture file alone (timeloop:ARCH.yaml)")
    p = Path(arch)
    return read(p, read_text(p, "AccelForge architecture file"))


# ---- the file: Jinja's defaults, YAML with AccelForge's tags ---------------------------------
_SET = re.compile(r"\{%-?\s*set\s+(\w+)\s*=\s*(\w+)\s*\|\s*default\((.*?)\)\s*-?%\}")


def _jinja(p: Path, text: str) -> str:
    """The file with AccelForge's tutorial Jinja (``{% set X = X | default(V) %}``, ``{{X}}``)
    rendered at its defaults."""
    values: dict[str, str] = {}
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in _SET.finditer(line):
            _need(m.group(1) == m.group(2), f"{p}:{n}", f"Jinja set {m.group(1)} from {m.group(2)}: only "
                                                        "'{% set X = X | default(V) %}' is read")
            values[m.group(1)] = m.group(3).strip().strip("'\"")
        line = _SET.sub("", line)
        _need("{%" not in line, f"{p}:{n}", "Jinja statements other than '{% set X = X | default(V) %}' are not "
                                            "read; render the file first (AccelForge's jinja_parse_data)")

        def sub(m: re.Match[str], n: int = n) -> str:
            _need(m.group(1) in values, f"{p}:{n}", f"Jinja variable {m.group(1)} has no default in the file")
            return values[m.group(1)]
        line = re.sub(r"\{\{\s*(\w+)\s*\}\}", sub, line)
        _need("{{" not in line, f"{p}:{n}", "Jinja expressions other than '{{X}}' are not read")
        out.append(line)
    return "\n".join(out)


def _yaml(p: Path, text: str) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    def tagged(loader: Any, suffix: str, node: Any) -> Any:
        _need(suffix in NODES, str(p), f"unknown node tag !{suffix}; AccelForge's are {', '.join(NODES)}")
        d = loader.construct_mapping(node, deep=True)
        return {"kind": suffix, **d}

    Loader.add_multi_constructor("!", tagged)
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader with three mapping tags)
    except yaml.YAMLError as e:
        raise HwsimError(f"{p}: not valid YAML: {getattr(e, 'problem', None) or e}") from None


def _validate(model: Any, doc: Any, where: str) -> Any:
    from pydantic import ValidationError

    from workloads.declared import message

    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise HwsimError(f"{where}{message(model, e)}") from None


# ---- expressions ------------------------------------------------------------------------------
class _Tensor:
    """A tensor in an expression: present (truthy), with its bits_per_value."""

    bits_per_value = WORD_BITS

    def __bool__(self) -> bool:
        return True


_BIN: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Pow: lambda a, b: a ** b,
    ast.Mod: lambda a, b: a % b}
_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


def evaluate(value: Any, where: str) -> float:
    """A number or an AccelForge expression (arithmetic, comparisons, ``if``/``else``,
    ``len(All)``, ``TENSOR.bits_per_value``, ``inf``) for a three-tensor Einsum."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise HwsimError(f"{where}: expected a number or an expression, got {value!r}")
    if not isinstance(value, str):
        return float(value)
    names: dict[str, Any] = {"inf": math.inf, "True": True, "False": False, "All": ALL,
                             **{t: _Tensor() for t in OPERANDS}}

    def ev(n: ast.AST) -> Any:
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float, bool)):
            return n.value
        if isinstance(n, ast.Name) and n.id in names:
            return names[n.id]
        if isinstance(n, ast.BinOp) and type(n.op) in _BIN:
            return _BIN[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd, ast.Not)):
            v = ev(n.operand)
            return -v if isinstance(n.op, ast.USub) else (not v if isinstance(n.op, ast.Not) else v)
        if isinstance(n, ast.IfExp):
            return ev(n.body) if ev(n.test) else ev(n.orelse)
        if isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) in _CMP:
            return _CMP[type(n.ops[0])](ev(n.left), ev(n.comparators[0]))
        if isinstance(n, ast.BoolOp):
            vals = [ev(v) for v in n.values]
            return all(vals) if isinstance(n.op, ast.And) else any(vals)
        if isinstance(n, ast.Attribute) and n.attr == "bits_per_value":
            return ev(n.value).bits_per_value
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "len" and len(n.args) == 1:
            return len(ev(n.args[0]))
        raise HwsimError(f"{where}: {value!r}: {ast.unparse(n)!r} is not an expression hwsim evaluates "
                         "(arithmetic, comparisons, if/else, len(All), TENSOR.bits_per_value, inf)")
    try:
        tree = ast.parse(value.strip(), mode="eval")
        out = ev(tree.body)
    except SyntaxError:
        raise HwsimError(f"{where}: {value!r} is not an expression") from None
    except (ZeroDivisionError, OverflowError, TypeError) as e:
        raise HwsimError(f"{where}: {value!r}: {e}") from None
    return float(out)


def tensor_set(expr: str | None, kept: dict[str, frozenset[str]], where: str) -> frozenset[str]:
    """An AccelForge tensor-set expression over input, weight and output (a memory's name is
    the set it keeps)."""
    if expr is None:
        return frozenset()
    base = {"All": ALL, "Nothing": frozenset(), "Inputs": frozenset({"input", "weight"}),
            "Outputs": frozenset({"output"}), "Intermediates": frozenset(),
            **{t: frozenset({t}) for t in OPERANDS}, **kept}

    def ev(n: ast.AST) -> frozenset[str]:
        if isinstance(n, ast.Name) and n.id in base:
            return base[n.id]
        if isinstance(n, ast.Attribute) and n.attr == "tensors" and isinstance(n.value, ast.Name) and n.value.id in kept:
            return kept[n.value.id]
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Invert):
            return ALL - ev(n.operand)
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.BitOr, ast.BitAnd, ast.Sub)):
            a, b = ev(n.left), ev(n.right)
            return a | b if isinstance(n.op, ast.BitOr) else (a & b if isinstance(n.op, ast.BitAnd) else a - b)
        raise HwsimError(f"{where}: {expr!r}: {ast.unparse(n)!r} is not a tensor set hwsim reads (All, Nothing, "
                         f"input, weight, output, Inputs, Outputs, Intermediates, a memory above "
                         f"({', '.join(kept) or 'none'}), ~, |, &)")
    try:
        return ev(ast.parse(str(expr).strip(), mode="eval").body)
    except SyntaxError:
        raise HwsimError(f"{where}: {expr!r} is not a tensor set expression") from None


# ---- the design ---------------------------------------------------------------------------------
_SHARED = re.compile(r"^sum\(\s*a\.n_calls\s*/\s*a\.throughput\s+for\s+a\s+in\s+actions\s*\)$")
_SEPARATE = re.compile(r"^max\(\s*a\.n_calls\s*/\s*a\.throughput\s+for\s+a\s+in\s+actions\s*\)$")
_CALLS = re.compile(r"^sum\(\s*a\.n_calls\s+for\s+a\s+in\s+actions\s*\)\s*(/.*)$")


def _latency(tl: Any, where: str) -> tuple[bool, float | None]:
    """(one shared port, calls a second if the expression fixes them) of a ``total_latency``."""
    if tl is None:
        return True, None
    s = " ".join(str(tl).split())
    if _SHARED.match(s):
        return True, None
    if _SEPARATE.match(s):
        return False, None
    m = _CALLS.match(s)
    if m:
        return True, 1.0 / evaluate("1 " + m.group(1), where)
    raise HwsimError(f"{where}: {s!r}: hwsim reads sum(a.n_calls / a.throughput for a in actions) (one port), "
                     "max(...) (separate ports) or sum(a.n_calls for a in actions) / RATE")


def _action(c: Memory | Compute, name: str, where: str) -> Action | None:
    found = [a for a in c.actions if a.name == name]
    return found[0] if found else None


def _energy(c: Memory | Compute, a: Action | None, where: str) -> float:
    """Joules per action."""
    if c.component_class == "Dummy" and (a is None or a.energy is None):
        return 0.0
    _need(a is not None and a.energy is not None, f"{where}.energy",
          f"left to AccelForge's component model ({c.component_class or 'no component_class'}); hwsim does not run "
          "its plug-ins: give the energy, or read the file AccelForge resolved (benchmarks/accelforge_peer.py "
          "--resolved DIR writes one)")
    assert a is not None
    return evaluate(a.energy, f"{where}.energy") * evaluate(a.energy_scale, f"{where}.energy_scale") * \
        evaluate(c.energy_scale, f"{where}.energy_scale")


def _rate(c: Memory | Compute, a: Action | None, where: str) -> float:
    """Actions a second (inf where not stated)."""
    if a is None or a.throughput is None:
        if a is not None and a.latency is not None:
            return 1.0 / evaluate(a.latency, f"{where}.latency")
        return math.inf
    return evaluate(a.throughput, f"{where}.throughput") * evaluate(a.throughput_scale, where) * \
        evaluate(c.throughput_scale, where)


def _unrollings(p: Path, fanouts: list[tuple[str, int, frozenset[str] | None]]) -> tuple[tuple[str, ...], ...]:
    """Every unrolling the fanouts' ``reuse`` allows (see the module)."""
    sides: list[tuple[str, ...]] = []
    for name, _, reuse in fanouts:
        if not reuse:
            sides.append(FREE)
        else:
            sides.append(tuple(d for d in LOOPS if all(d not in RELEVANT[t] for t in reuse)))
            _need(bool(sides[-1]), f"{p}: spatial {name}.reuse", f"no loop of a conv or GEMM reuses all of "
                                                                 f"{', '.join(sorted(reuse))}")
    # a fanout may also unroll all its loops at once, each taking what the ones before it leave
    # (AccelForge maps several loops on one fanout): "C*FY*FX" beside C, FY and FX
    sides = [side + (("*".join(side),) if len(side) > 1 else ()) for side in sides]
    while len(sides) < 2:
        sides.append(("",))
    out: list[tuple[str, ...]] = [()]
    for side in sides:
        out = [u + (d,) for u in out for d in side
               if not d or not set(d.split("*")) & {x for v in u for x in v.split("*") if x}]
    _need(0 < len(out) <= MAX_SEARCHED, f"{p}: arch.nodes.spatial", f"the fanouts' reuse allows {len(out)} "
          f"unrollings, over the {MAX_SEARCHED} hwsim searches; give the fanouts reuse constraints")
    return tuple(out)


def read(p: Path, text: str) -> SpatialArch:
    """The design in AccelForge architecture file ``p`` (its text ``text``)."""
    doc = _yaml(p, _jinja(p, text))
    _need(isinstance(doc, dict), str(p), "expected an AccelForge spec with an arch: section")
    d = _validate(Doc, doc, f"{p}: ")
    notes: list[str] = []
    nodes: list[Memory | Compute | Container] = []
    for i, raw in enumerate(d.arch.nodes):
        where = f"{p}: arch.nodes[{i}]"
        _need(raw.get("kind") in NODES, where, "must be tagged !Memory, !Compute or !Container")
        nodes.append(_validate(NODES[raw["kind"]], raw, f"{where} ({raw.get('name', '?')})."))
    # the MAC: the enabled Compute, last
    computes = [(i, n) for i, n in enumerate(nodes) if isinstance(n, Compute)
                and evaluate(n.enabled if isinstance(n.enabled, str) else float(n.enabled),
                             f"{p}: arch.nodes[{i}] ({n.name}).enabled")]
    _need(len(computes) == 1 and computes[0][0] == len(nodes) - 1 or
          (len(computes) == 1 and all(isinstance(n, Compute) for n in nodes[computes[0][0]:])),
          f"{p}: arch.nodes", "needs one enabled !Compute (the MAC), the last node; got "
          f"{', '.join(n.name for _, n in computes) or 'none'}")
    ci, mac = computes[0]
    cw = f"{p}: arch.nodes[{ci}] ({mac.name})"
    for a in mac.actions:
        _need(a.name == "compute", f"{cw}.actions", f"unknown action {a.name!r}; a Compute's is compute")
    ca = _action(mac, "compute", cw)
    _, clock = _latency(mac.total_latency, f"{cw}.total_latency")
    clock = clock or _rate(mac, ca, f"{cw}.actions.compute")
    _need(math.isfinite(clock) and 1e3 <= clock <= 1e12, f"{cw}.actions.compute.throughput",
          f"the MAC's throughput (computes a second) is the clock; hwsim's clocks are 1 kHz to 1 THz, got {clock:g}")
    mac_pj = _energy(mac, ca, f"{cw}.actions.compute") * 1e12
    # fanouts (array dimensions), and the memories with the dimensions above them
    fanouts: list[tuple[str, int, frozenset[str] | None]] = []
    mems: list[tuple[int, Memory, int]] = []          # (node index, memory, fanouts at or above it)
    kept: dict[str, frozenset[str]] = {}
    usages: list[float] = []                          # each fanout's min_usage
    static_w = 0.0
    for i, n in enumerate(nodes[:ci]):
        where = f"{p}: arch.nodes[{i}] ({n.name})"
        for s in n.spatial:
            sw = f"{where}.spatial.{s.name}"
            _need(not s.loop_bounds, f"{sw}.loop_bounds", "loop bounds are not modelled; leave them out")
            f = evaluate(s.fanout, f"{sw}.fanout")
            _need(f >= 1 and f == int(f), f"{sw}.fanout", f"must be a whole number of instances, got {f:g}")
            reuse = tensor_set(s.reuse, kept, f"{sw}.reuse") if s.reuse is not None else None
            if s.may_reuse not in (None, "All") and (reuse is None or
                                                     tensor_set(s.may_reuse, kept, sw) != reuse):
                notes.append(f"{s.name}'s may_reuse {s.may_reuse} read as reuse allowed (hwsim multicasts)")
            usage = evaluate(s.min_usage, f"{sw}.min_usage")
            _need(0 <= usage <= 1, f"{sw}.min_usage", f"must be a fraction of the fanout from 0 to 1, got {usage:g}")
            usages.append(usage)
            fanouts.append((s.name, int(f), reuse))
        if isinstance(n, Memory):
            for a in n.actions:
                _need(a.name in ("read", "write"), f"{where}.actions", f"unknown action {a.name!r}; a Memory's are "
                                                                       "read and write")
                _need(not a.values_per_action, f"{where}.actions.{a.name}.values_per_action", "not read; give "
                                                                                             "bits_per_action")
            _need(not n.bits_per_value, f"{where}.bits_per_value", "a memory's own tensor widths are not modelled "
                                                                   "(hwsim's operands have one width at every level)")
            _need(not n.values_per_action, f"{where}.values_per_action", "not read; give bits_per_action")
            ops = tensor_set(n.tensors.keep, kept, f"{where}.tensors.keep") | \
                tensor_set(n.tensors.may_keep, kept, f"{where}.tensors.may_keep")
            kept[n.name] = tensor_set(n.tensors.keep, kept, f"{where}.tensors.keep")
            if ops:
                mems.append((i, n, len(fanouts)))
            else:
                notes.append(f"{n.name} holds no tensor and is left out")
        elif isinstance(n, Compute):
            continue                   # a disabled Compute (tpu_v4i's ScalarUnit)
        if isinstance(n, (Memory, Compute)) and n.leak_power is not None:
            inst = math.prod(f for _, f, _ in fanouts)
            static_w += evaluate(n.leak_power, f"{where}.leak_power") * evaluate(n.leak_power_scale, where) * inst
    if mac.leak_power is not None:
        static_w += evaluate(mac.leak_power, f"{cw}.leak_power") * math.prod(f for _, f, _ in fanouts)
    _need(bool(mems), f"{p}: arch.nodes", "needs a !Memory (the outermost is off-chip)")
    # min_usage 1 on a fanout: AccelForge's mapper takes only factors that divide the layer
    divisors = any(u >= 1 for u in usages)
    if divisors and not all(u >= 1 for u in usages):
        notes.append("min_usage 1 on some fanouts imposed on all (factors: divisors)")
    if any(0 < u < 1 for u in usages):
        notes.append("a min_usage below 1 not imposed")
    _need(len(fanouts) - 2 <= MAX_EXTRA, f"{p}: arch.nodes", f"hwsim's arrays have at most {MAX_EXTRA + 2} "
                                                              f"dimensions, the fanouts make {len(fanouts)}")
    dims = [f"D{k + 1}" for k in range(max(2, len(fanouts)))]
    levels = []
    for k, (i, m, above) in enumerate(mems):
        where = f"{p}: arch.nodes[{i}] ({m.name})"
        top = k == 0
        _need(not top or above == 0, f"{where}.spatial", "the outermost memory is off-chip: one, for the whole array")
        ops = tensor_set(m.tensors.keep, kept, where) | tensor_set(m.tensors.may_keep, kept, where)
        _need(not top or ops == ALL, f"{where}.tensors", "the outermost memory (off-chip) must keep every tensor")
        size = evaluate(m.size, f"{where}.size")
        _need(size > 0, f"{where}.size", f"must be above 0 bits, got {size:g}")
        shared, calls = _latency(m.total_latency, f"{where}.total_latency")
        ports = {}
        for way in ("read", "write"):
            act = _action(m, way, where)
            aw = f"{where}.actions.{way}"
            bpa = evaluate(act.bits_per_action, f"{aw}.bits_per_action") if act is not None and \
                act.bits_per_action is not None else (evaluate(m.bits_per_action, f"{where}.bits_per_action")
                                                    if m.bits_per_action is not None else 1.0)
            rate = calls if calls is not None else _rate(m, act, aw)
            bits = min(UNBOUNDED_BITS, rate * bpa / clock) if math.isfinite(rate) else UNBOUNDED_BITS
            pj = _energy(m, act, aw) * 1e12 * bits / bpa
            _need(pj <= 2 ** 50, f"{aw}.energy", f"{pj:g} pJ per access of the port's {bits:g} bits is over hwsim's "
                                                  f"bound (2^50 pJ); state the energy in joules (1e-12 is a pJ)")
            if pj == 0:
                notes.append(f"{m.name}'s stated energy 0 priced {ZERO_PJ:g} pJ an access (hwsim's energy search needs "
                             "every level priced)")
            ports[way] = (bits, pj or ZERO_PJ)
        served = tuple(dims[above + j] for j in range(len(fanouts) - above))
        kind: LevelKind = "dram" if top else ("rf" if not served else "sram")
        safe = "".join(ch if ch.isalnum() else "_" for ch in m.name)
        may = ops - tensor_set(m.tensors.keep, kept, where)         # may_keep only: the search may bypass it
        levels.append(Level(safe, tuple(o for o in OPERANDS if o in ops),
                            0.0 if top else (UNBOUNDED_BYTES if math.isinf(size) else size / 8),
                            served=None if top else served, read_bits=ports["read"][0], write_bits=ports["write"][0],
                            shared_port=shared, read_pj=ports["read"][1], write_pj=ports["write"][1], kind=kind,
                            bypass=tuple(o for o in OPERANDS if o in may and not top)))
    sizes = [f for _, f, _ in fanouts] + [1] * (2 - len(fanouts))
    resolved = RESOLVED_MARK in "".join(ln for ln in text.splitlines()[:8] if ln.lstrip().startswith("#"))
    source = (f"{SOURCE_PREFIX}{p} (AccelForge 1.0 format); array "
              f"{' x '.join(f'{n} {f}' for n, f, _ in fanouts) or '1 MAC'}; clock {clock / 1e6:g} MHz from the MAC's "
              "throughput; " + ("per-action energies and throughputs as AccelForge 1.0.467 computed them with its "
                                "hwcomponents plug-ins (Spec.calculate_component_costs), written into this file; "
                                if resolved else "energies as the file states them; ")
              + "operands 8-bit, outputs too (AccelForge's bits_per_value); search for least energy "
              "(AccelForge's Metrics.ENERGY); " + "; ".join(dict.fromkeys(notes)))
    return SpatialArch(name=p.stem.replace(".resolved", ""), rows=sizes[0], cols=sizes[1],
                       extra_dims=tuple(sizes[2:]), clock_mhz=clock / 1e6, word_bits=WORD_BITS, acc_bits=WORD_BITS,
                       mac_pj=mac_pj, levels=tuple(reversed(levels)), unrollings=_unrollings(p, fanouts),
                       pe_accumulator=False, operand_registers="none", port_words=False, loading="roofline",
                       factors="divisors" if divisors else "padded", psum_reads="writes", objective="energy", static_power_w=static_w, technology_nm=28,
                       source=source.rstrip("; "))
