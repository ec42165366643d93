"""SCALE-Sim 3.0.0 compatibility mode (``hwsim scalesim``): SCALE-Sim's own model, quirks
included, with its reports computed from demand streams instead of per-cycle matrices.
Kept apart from ``sim.systolic`` (hwsim's own array model), which it does not need."""

__all__: list[str] = []
