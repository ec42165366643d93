"""Systems of many devices for training at scale: topologies and their links, collectives
simulated as transfers over them, and pipeline schedules."""

__all__: list[str] = []
