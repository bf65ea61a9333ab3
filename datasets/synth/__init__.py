"""Procedural synthetic scalp close-ups with exact labels, for fast tests and the smoke demo.

A trichoscope-like picture is drawn from scratch (skin, follicles, hair strands, and the
five lesion kinds plus thinning patches), and every label is measured from the drawing, so
boxes, masks, six 0-3 grades, the Low/Mid/High hair-loss grade and per-hair counts are exact.
Scores on synthetic data say the code works; they never say how a model does on real scalps.

>>> import numpy as np
>>> from pathlib import Path
>>> scalp = render_scalp(np.random.default_rng(0), (320, 240))    # in memory
>>> ds = generate(12, Path("runs/synth"), seed=0)                 # doctest: +SKIP

Modules: ``render`` composes a picture, ``skin``, ``hair`` and ``lesions`` draw its parts,
``grading`` turns drawn amounts into grades, ``writer`` writes dataset folders and
``preview`` draws contact sheets.
"""
from datasets.synth.grading import AREA_GRADE_CUTS, REDUCTION_GRADE_CUTS
from datasets.synth.render import HairTruth, Subject, SynthRegion, SynthScalp, render_scalp
from datasets.synth.writer import GENERATOR_VERSION, generate, to_sample

__all__ = [
    "AREA_GRADE_CUTS",
    "GENERATOR_VERSION",
    "REDUCTION_GRADE_CUTS",
    "HairTruth",
    "Subject",
    "SynthRegion",
    "SynthScalp",
    "generate",
    "render_scalp",
    "to_sample",
]
