"""hwsim's analysis side: energy model, roofline, reports, sweeps and the ``hwsim`` CLI."""

__all__: list[str] = []
