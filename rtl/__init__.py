"""Amaranth RTL of key accelerator units, co-simulated against the models in ``sim``."""
