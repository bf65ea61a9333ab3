"""fusion/: the severity classifier (image + lesion mask → six 0-3 grades and Low/Mid/High).

- :mod:`fusion.model`: :class:`SeverityClassifier` = backbone + mask-guided pooling + heads.
- :mod:`fusion.heads`: :class:`HeadSpec` (what a head grades, from which labels, which loss).
- :mod:`fusion.losses`: focal and CORN losses with unknown labels masked out.
- :mod:`fusion.inputs`: the letterbox and soft-mask preprocessing shared by training and inference.
- :mod:`fusion.data`: examples from dataset folders, derived area grades, augmentation.
- :mod:`fusion.train`: :func:`train_classifier`; :mod:`fusion.cli` wires it into ``pipeline.py``.
- :mod:`fusion.calibration`: temperature scaling per head.
- :mod:`fusion.predict`: :class:`SeverityGrader`, the inference API.
"""
