"""The Gradio app's UI layer. Only this package imports Gradio; it talks to the engine through the Trainer's public
commands and `snapshot()`. `build_demo` composes the tabs (see app.py)."""

from .demo import build_demo, launch_kwargs

__all__ = ["build_demo", "launch_kwargs"]
