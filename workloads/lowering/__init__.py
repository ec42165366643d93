"""The parts of :func:`workloads.lower.lower`, one concept a module:

- ``tensors``: a tensor's storage identity, the part of it a view covers, its width;
- ``events``: the recorded events, the folding of repeated blocks, their naming as ops;
- ``recorder``: the state of one lowering (module stack, parameters, the graph, operands);
- ``kept``: kept weights written to a folder and mapped back;
- ``gemm``: matmuls, convolutions, quantized layers and RNNs, and their gradients;
- ``attention``: attention as one op (``attention="fused"`` and PyTorch's fused kernels);
- ``dispatch``: the dispatch mode that routes every op to its handler;
- ``metaops``: ops on the meta device run once per distinct input (N identical blocks);
- ``spill``: spilling saved tensors and paging weights while a training step is lowered;
- ``step``: the default loss, the repeated blocks and the parameters of a training step.

Import from :mod:`workloads.lower`; these modules are its implementation.
"""

__all__: list[str] = []
