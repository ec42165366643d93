"""hwsim's hardware side: machine descriptions and their simulators (cycle-level systolic
arrays and EIE; a per-wave tensor-core GPU model whose main loops are stepped on a
cycle-level SM, with an event-driven reference), memory models and the whole-workload schedule.

Every machine implements ``sim.machine.Machine``; ``sim.registry`` lists them. Reads only
workload traces (``workloads.trace``); never imports torch.
"""

__all__: list[str] = []
