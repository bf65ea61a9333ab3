"""Datasets: one canonical record (``Sample``), many readers and writers.

Imports no model code. See ``datasets.records`` for the records, ``datasets.folder`` for the
dataset folder on disk, ``datasets.importer`` for ``data import``.
"""
