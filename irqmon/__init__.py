"""irqmon: find interrupt-safety bugs in Cortex-M firmware from a runtime trace."""

__version__ = "0.1.0"
