"""Hair measurements from trichoscope close-ups: count, shaft thickness, thin-hair ratio, density.

>>> from hair import HairMeter                                        # doctest: +SKIP
>>> meter = HairMeter.load("weights/hair.safetensors", native_aspect=None)  # doctest: +SKIP
>>> measurement = meter.measure(rgb, magnification=50)               # doctest: +SKIP
>>> analysis.hair = measurement.to_dict()                            # doctest: +SKIP
>>> from hair.draw import draw_hairs                                 # doctest: +SKIP

Modules: ``model`` (the U-Net that paints shafts and their centre lines), ``meter`` (the public
door: picture in, :class:`HairMeasurement` out), ``shafts`` (skeleton, junctions, direction
grouping: shafts, not pixels), ``measure`` (widths, the record), ``units`` (um per px, scope
presets), ``draw`` (the overlay), and for training and checking: ``synthetic``,
``training_data``, ``augment``, ``train``, ``evaluate``, ``marks``, ``ablation``.
Names are imported lazily so importing ``hair`` does not pay for torch.
"""
from __future__ import annotations

from core.lazy import lazy_exports

_EXPORTS = {
    "HairMeter": "hair.meter",
    "HairMeasurement": "hair.measure",
    "measure_hairs": "hair.measure",
    "trace_shafts": "hair.shafts",
    "TraceParams": "hair.shafts",
    "HairNet": "hair.model",
    "draw_hairs": "hair.draw",
    "um_per_px_for": "hair.units",
    "MAGNIFICATION_UM_PER_PX": "hair.units",
    "THIN_HAIR_UM": "hair.units",
}


__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
