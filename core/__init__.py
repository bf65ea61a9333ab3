"""Shared pieces every stage may use: names, image loading, atomic I/O, weights configs.

Nothing in ``core`` imports a stage package (``detection``, ``segmentation``,
``fusion``) or ``datasets``; stages import ``core``, never each other.
"""
