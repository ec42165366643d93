"""One SM of a tensor-core GPU, stepped cycle by cycle (issue 35, item 1).

* :mod:`~sim.gpu.sm.isa`: what each generation's instructions cost (the inputs, sourced);
* :mod:`~sim.gpu.sm.program`: a GEMM CTA's main loop, warp by warp, as CUTLASS writes it;
* :mod:`~sim.gpu.sm.core`: the stepper (warp schedulers, tensor pipes, shared memory);
* :mod:`~sim.gpu.sm.mainloop`: the steady-state cycles per K step the wave model takes.
"""

from .mainloop import MainLoop, main_loop

__all__ = ["MainLoop", "main_loop"]
