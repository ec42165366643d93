"""Amaranth RTL of key accelerator units, co-simulated against the models in ``sim``."""

__all__: list[str] = []
