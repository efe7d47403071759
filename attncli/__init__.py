"""attncli: train, run and inspect attention-based (Luong) translation models on a CPU."""

__version__ = "0.1.0"
