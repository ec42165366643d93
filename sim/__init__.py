"""hwsim's hardware side: hardware descriptions, cycle-level simulators and memory models.

Reads only workload traces (``workloads.trace``); never imports torch.
"""
