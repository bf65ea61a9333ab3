"""The HTTP API: ``POST /analyze`` (image in, Analysis JSON out), ``GET /health``, ``GET /version``.

A thin shell over one ``Pipeline``: decoding, analysis and advice are the same code the CLI
and the demo use. Nothing is written server-side: uploads stay in memory.

>>> app = create_app(Pipeline())              # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)   # doctest: +SKIP
"""
from __future__ import annotations

import asyncio
import base64
import io
import logging
from typing import Any, Protocol

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from core.analysis import DISCLAIMER, Analysis
from core.images import ImageError, LoadedImage, decode_image
from demo.advice import advise

log = logging.getLogger(__name__)

#: Uploads larger than this are refused with 413 before they are decoded.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
ACCEPTED_TYPES = {"image/jpeg", "image/png", "image/bmp", "image/webp", "image/x-ms-bmp", "image/heic", "image/heif"}


class ImageAnalyzer(Protocol):
    def analyze_image(self, image: LoadedImage, name: str) -> Analysis: ...

    def version(self) -> dict[str, Any]: ...


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "status": status})


def overlay_png(analysis: Analysis, image: LoadedImage) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(analysis.plot(image.rgb)).save(buffer, format="PNG")
    return buffer.getvalue()


def create_app(pipeline: ImageAnalyzer, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    app = FastAPI(
        title="scalpscope",
        description="Detect, outline and grade scalp problems in a photo. " + DISCLAIMER,
        version=str(pipeline.version().get("scalpscope", "0")),
    )
    # One analysis at a time: the models use every core already, and a queue loses nothing.
    lock = asyncio.Lock()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/version")
    async def version() -> dict[str, Any]:
        return pipeline.version()

    @app.post("/analyze")
    async def analyze(request: Request, image: UploadFile = File(...), overlay: bool = Form(False)) -> Any:
        if image.content_type not in ACCEPTED_TYPES:
            return _error(415, f"unsupported content type {image.content_type!r}; send a JPEG, PNG, BMP, WebP or HEIC image")
        data = await image.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            return _error(413, f"image larger than {max_upload_bytes // (1024 * 1024)} MB; send a smaller picture")
        try:
            loaded = decode_image(data, name=image.filename or "upload")
        except ImageError as err:
            return _error(422, str(err))
        async with lock:
            try:
                analysis = await asyncio.to_thread(pipeline.analyze_image, loaded, image.filename or "upload")
            except Exception as err:  # the client gets a clean 500; the log keeps the details
                log.exception("analysis failed for %s", image.filename)
                return _error(500, f"analysis failed ({type(err).__name__}); the server log has details")
        body = analysis.to_dict()
        body["advice"] = advise(analysis).to_dict()
        if overlay or request.query_params.get("overlay", "").lower() in ("1", "true", "yes"):
            body["overlay_png_base64"] = base64.b64encode(await asyncio.to_thread(overlay_png, analysis, loaded)).decode("ascii")
        return body

    @app.exception_handler(ValueError)
    async def value_error(request: Request, err: ValueError) -> JSONResponse:
        return _error(400, str(err))

    return app
