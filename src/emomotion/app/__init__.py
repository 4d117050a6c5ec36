"""The web demo: a Gradio page that generates emotional motion from a sentence.

``DemoRunner`` is the part without a user interface (input limits, one folder per request, the
files offered for download); ``build_app`` puts a Gradio page on top of it and ``launch_app`` serves
it, on localhost by default. Gradio is imported only by ``build_app``/``launch_app``.
"""

from emomotion.app.config import AppLimits, ServeConfig
from emomotion.app.models import ModelEntry, load_models
from emomotion.app.runner import DemoRunner, RunResult, UIRequest
from emomotion.app.server import RunningApp, build_app, launch_app, serve

__all__ = [
    "AppLimits",
    "DemoRunner",
    "ModelEntry",
    "RunResult",
    "RunningApp",
    "ServeConfig",
    "UIRequest",
    "build_app",
    "launch_app",
    "load_models",
    "serve",
]
