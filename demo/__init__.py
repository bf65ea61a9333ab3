"""The hackathon demo (Gradio) and the HTTP API (FastAPI), both thin shells over one
``Pipeline`` and its ``Analysis``; the care advice comes from the curated ``knowledge.yaml``."""
