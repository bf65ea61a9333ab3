"""The hackathon demo: a local Gradio page. Photo in (upload, camera or a bundled sample),
overlay, grades with confidence and curated care advice out.

Everything shown comes from one :class:`~core.analysis.Analysis` made by the shared
``Pipeline``; this file only lays it out. Nothing a visitor enters is stored.
"""
from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from core.analysis import DISCLAIMER, GRADE_COLORS, SHORT_NAMES, Analysis, hair_label
from core.images import ImageError, LoadedImage, load_image
from core.taxonomy import HAIR_LOSS_GRADES, INDICATOR_GRADE_NAMES, INDICATORS
from demo.advice import AGE_BANDS, FREQUENCIES, SEXES, Profile, advise

log = logging.getLogger(__name__)
SAMPLES = Path(__file__).resolve().parents[1] / "samples"

INTRO = f"""# scalpscope
Upload a scalp photo (a trichoscope close-up or a photo of the head), take one with your camera,
or click a sample. You get the areas found, six scalp indicators graded 0-3, an overall hair-loss grade,
each with the model's confidence, and general care advice.

**{DISCLAIMER}** Nothing you upload or enter is stored.
"""


def indicator_chart(analysis: Analysis) -> str:
    """The six indicator grades as labelled bars (HTML, no script), readable without colour too."""
    if not analysis.is_scalp or not analysis.indicators:
        note = "Indicators are graded on trichoscope close-ups only." if analysis.is_scalp else ""
        return f'<div class="scalp-chart"><p>{html.escape(note)}</p></div>'
    rows = []
    for name in INDICATORS:
        result = analysis.indicators.get(name)
        if result is None:
            continue
        grade = int(result.grade)
        r, g, b = GRADE_COLORS[grade]
        width = 8 + 30 * grade
        rows.append(
            f'<div class="scalp-row" data-indicator="{name}" data-grade="{grade}">'
            f'<span class="scalp-name">{html.escape(SHORT_NAMES[name])}</span>'
            f'<span class="scalp-bar" style="width:{width}%;background:rgb({r},{g},{b})"></span>'
            f'<span class="scalp-grade">{grade} {INDICATOR_GRADE_NAMES[grade]} ({result.confidence:.0%})</span></div>'
        )
    style = (
        "<style>.scalp-row{display:flex;align-items:center;gap:8px;margin:4px 0;font-size:14px}"
        ".scalp-name{width:110px}.scalp-bar{height:14px;border-radius:3px;display:inline-block}"
        ".scalp-grade{white-space:nowrap}</style>"
    )
    return style + '<div class="scalp-chart">' + "".join(rows) + "</div>"


def hair_loss_label(analysis: Analysis) -> dict[str, float] | None:
    if not analysis.is_scalp or analysis.hair_loss is None:
        return None
    return {grade.upper(): float(analysis.hair_loss.probs[grade]) for grade in HAIR_LOSS_GRADES}


def status_text(analysis: Analysis) -> str:
    if not analysis.is_scalp:
        return (
            "### This does not look like a scalp photo\nscalpscope only grades trichoscope close-ups and photos of the "
            f"head, so nothing was graded (scalp score {analysis.scalp_score:.2f}). Try a sharper, well-lit photo of the scalp."
        )
    view = "trichoscope close-up" if analysis.view == "closeup" else "photo of the head"
    count = len(analysis.regions)
    text = f"**Seen as:** {view} ({(analysis.view_confidence or 0):.0%} sure) · {count} area{'' if count == 1 else 's'} marked"
    lines = [text]
    if analysis.hair and analysis.hair.get("count") is not None:
        scale = "" if analysis.hair.get("units") == "um" else " (widths in pixels: start the demo with --magnification or --um-per-px for micrometres and density)"
        lines.append(f"**Hairs:** {html.escape(hair_label(analysis.hair))}{scale}")
    return "\n\n".join([*lines, *(f"_{html.escape(note[0].upper() + note[1:])}._" for note in analysis.notes)])


class DemoBackend:
    """The demo's one callback, over a shared pipeline; returns what the page shows."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def run(self, image: Any, age_band: str | None, sex: str | None, dye_perm: str | None, products: bool) -> tuple:
        empty = (None, None, "", "", "")
        try:
            loaded = self._load(image)
        except ImageError as err:
            reason = str(err).split(": ", 1)[-1]
            return (*empty[:4], f"### Could not read that file\n{html.escape(reason)}. Please upload a JPEG, PNG, WebP or BMP photo.")
        if loaded is None:
            return (*empty[:4], "Upload a photo, take one with the camera, or click a sample to begin.")
        try:
            analysis = self.pipeline.analyze_image(loaded, "upload")
        except Exception:  # never a stack trace in the page; the log keeps it
            log.exception("demo analysis failed")
            return (*empty[:4], "### Something went wrong while analyzing this photo\nPlease try another picture.")
        profile = Profile(age_band=age_band or None, sex=sex or None, dye_perm=dye_perm or None, hair_loss_products=bool(products))
        advice = advise(analysis, profile).markdown() if analysis.is_scalp else ""
        return analysis.plot(loaded.rgb), hair_loss_label(analysis), indicator_chart(analysis), advice, status_text(analysis)

    @staticmethod
    def _load(image: Any) -> LoadedImage | None:
        if image is None:
            return None
        if isinstance(image, np.ndarray):
            rgb = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
            return LoadedImage(rgb, (rgb.shape[1], rgb.shape[0]))
        path = getattr(image, "name", None) or getattr(image, "path", None) or image
        return load_image(Path(path))


def sample_images() -> list[tuple[str, str]]:
    if not SAMPLES.is_dir():
        return []
    return [(str(p), p.stem) for p in sorted(SAMPLES.iterdir()) if p.suffix.lower() in {".jpg", ".jpeg", ".png"}]


def build_demo(pipeline: Any):
    """The Gradio Blocks app over ``pipeline`` (anything with ``analyze_image``)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    backend = DemoBackend(pipeline)
    samples = sample_images()
    with gr.Blocks(title="scalpscope demo") as app:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Upload a photo", elem_id="upload", file_count="single")
                camera = gr.Image(label="or take one with your camera", sources=["webcam"], type="numpy", elem_id="camera")
                gallery = gr.Gallery(value=samples, label="or click a sample", columns=4, height=220, allow_preview=False,
                                     elem_id="samples")
                with gr.Accordion("About you (optional, not stored)", open=False):
                    age = gr.Dropdown(choices=list(AGE_BANDS), label="Age band", value=None)
                    sex = gr.Radio(choices=list(SEXES), label="Sex", value=None)
                    dye = gr.Dropdown(choices=list(FREQUENCIES), label="Dye or perm", value=None)
                    products = gr.Checkbox(label="I use hair-loss products", value=False)
            with gr.Column(scale=2):
                status = gr.Markdown("Upload a photo, take one with the camera, or click a sample to begin.", elem_id="status")
                overlay = gr.Image(label="What scalpscope sees", type="numpy", interactive=False, elem_id="overlay")
                with gr.Row():
                    hair_loss = gr.Label(label="Hair-loss grade (confidence)", num_top_classes=3, elem_id="hair-loss")
                    chart = gr.HTML(elem_id="indicators")
                advice = gr.Markdown(elem_id="advice")
        outputs = [overlay, hair_loss, chart, advice, status]
        profile_inputs = [age, sex, dye, products]
        upload.upload(backend.run, [upload, *profile_inputs], outputs)
        camera.change(backend.run, [camera, *profile_inputs], outputs)

        def from_sample(event: gr.SelectData, *profile: Any) -> tuple:
            return backend.run(samples[event.index][0], *profile)

        gallery.select(from_sample, profile_inputs, outputs)
    return app


def launch(pipeline: Any, host: str = "127.0.0.1", port: int = 7860) -> None:
    app = build_demo(pipeline)
    import gradio as gr

    app.launch(server_name=host, server_port=port, show_error=False, theme=gr.themes.Soft(font=["system-ui", "sans-serif"]),
               footer_links=[], allowed_paths=[str(SAMPLES)])
