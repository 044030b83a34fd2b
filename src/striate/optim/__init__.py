"""Optimizers and learning-rate schedules over Parameters."""
__all__ = []
