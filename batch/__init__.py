"""Batch analysis of image folders: resumable, atomic, with summary.csv and report.html.

``batch.runner`` walks the inputs, skips finished work and writes one JSON and one overlay
per image; ``batch.report`` turns the finished JSONs into ``summary.csv`` and a
self-contained ``report.html``. Both consume :class:`core.analysis.Analysis` only.
"""
