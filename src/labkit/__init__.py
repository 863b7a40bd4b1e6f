"""labkit: hands-on MLOps take-home labs graded by behaviour."""

__version__ = "0.1.0"
