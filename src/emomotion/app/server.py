"""The Gradio page of the demo and its server (localhost by default, one generation at a time).

Gradio serves files from its upload/cache folder and from ``allowed_paths``; both are pointed at
the demo's output folder, so the page can fetch generated files and nothing else.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emomotion.app.config import ServeConfig
from emomotion.app.models import ModelEntry, load_models
from emomotion.app.runner import NO_EMOTION, DemoRunner, UIRequest
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import ConfigError, EmomotionError

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)

TITLE = "emomotion: emotional text-to-motion"
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("a person walks forward", "Joy"),
    ("a person walks slowly in a circle", "Sadness"),
    ("a person knocks on a door", "Anger"),
    ("a person waves with the right hand", "Pride"),
    ("a person walks forward and looks around", "Anxiety"),
)
SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "sans-serif")
MONO_FONTS = ("ui-monospace", "monospace")
DEFAULT_SECONDS = 4.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _gradio() -> Any:
    try:
        import gradio
    except ImportError as exc:
        raise ConfigError(
            "the web demo needs gradio: pip install 'emomotion[app]' (or pip install 'gradio>=6,<7')"
        ) from exc
    return gradio


def _gradio_files_in(folder: Path) -> str | None:
    """Point gradio's upload/cache folder (GRADIO_TEMP_DIR) at ``folder``, so results are served from there
    without copies and uploads land there. Gradio reads it when components are made and again for each
    upload, so it stays set while the app runs; returns the previous value for :meth:`RunningApp.close`."""
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return old


def _model_controls(gr: Any, entry: ModelEntry) -> tuple[Any, ...]:
    """Component updates for the chosen model: emotion picker, intensity, sampler, steps, info."""
    return (
        gr.Dropdown(visible=entry.emotions, value=NO_EMOTION),
        gr.Slider(visible=entry.emotions),
        gr.Dropdown(choices=list(entry.samplers), value=entry.default_sampler, visible=bool(entry.samplers)),
        gr.Slider(minimum=1, maximum=entry.max_steps, value=entry.default_steps, step=1),
        gr.Markdown(entry.describe()),
    )


def build_app(runner: DemoRunner) -> gr.Blocks:
    """The page: prompt, emotion and intensity, model, sampler and steps, length, seed, samples;
    the animation, a status line and the files to download; examples one click away."""
    gr = _gradio()
    lim = runner.limits
    first = next(iter(runner.models.values()))
    any_emotions = any(e.emotions for e in runner.models.values())
    restyle_models = [n for n, e in runner.models.items() if e.emotions and e.kind == "mdm"]
    any_restyle = bool(restyle_models)

    def on_generate(
        prompt: str,
        model: str,
        emotion: str | None,
        intensity: float,
        sampler: str | None,
        steps: float,
        seconds: float,
        num: float,
        seed: float,
        guidance: float,
    ) -> tuple[str, list[str], str]:
        ui = UIRequest(
            prompt=prompt,
            model=model,
            seconds=seconds,
            num=num,
            steps=steps,
            sampler=sampler,
            emotion=emotion,
            intensity=intensity,
            guidance=guidance,
            seed=seed,
        )
        try:
            result = runner.run(ui)
        except EmomotionError as exc:
            log.info("request refused: %s", exc.reason)  # one line; the user sees the reason, no traceback
            message = exc.reason[:1].upper() + exc.reason[1:]
            raise gr.Error(message, title="Cannot generate", print_exception=False) from exc
        return str(result.video), [str(f) for f in result.files], result.message

    def on_restyle(
        clip: str | None,
        model: str,
        emotion: str | None,
        strength: float,
        intensity: float,
        steps: float,
        seed: float,
    ) -> tuple[str, list[str], str]:
        from emomotion.app.restyle import RestyleUI, run_restyle, uploaded_clip

        try:
            path = uploaded_clip(clip, runner.out)
            ui = RestyleUI(
                path, model, emotion, strength=strength, intensity=intensity, steps=steps, seed=seed
            )
            result = run_restyle(runner, ui)
        except EmomotionError as exc:
            log.info("restyle refused: %s", exc.reason)
            raise gr.Error(exc.reason[:1].upper() + exc.reason[1:], title="Cannot restyle") from exc
        return str(result.video), [str(f) for f in result.files], result.message

    def on_model(name: str) -> tuple[Any, ...]:
        entry = runner.models.get(name)
        if entry is None:
            raise gr.Error(f"Unknown model {name!r}")
        return _model_controls(gr, entry)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(
            f"# {TITLE}\nDescribe a motion in one sentence, pick an emotion, and generate. "
            f"Prompts up to {lim.max_prompt_chars} characters, {lim.min_seconds:g} to "
            f"{lim.max_seconds:g} seconds, up to {lim.max_samples} samples."
        )
        with gr.Tab("Generate"), gr.Row():
            with gr.Column(scale=1):
                prompt = gr.Textbox(
                    label="Prompt", lines=2, placeholder="a person walks forward", elem_id="prompt"
                )
                with gr.Row():
                    emotion = gr.Dropdown(
                        [NO_EMOTION, *EMOTIONS],
                        value=NO_EMOTION,
                        label="Emotion",
                        visible=first.emotions,
                        elem_id="emotion",
                    )
                    intensity = gr.Slider(
                        0.0, 2.0, value=1.0, step=0.05, label="Intensity", visible=first.emotions
                    )
                model = gr.Dropdown(list(runner.models), value=first.name, label="Model", elem_id="model")
                info = gr.Markdown(first.describe())
                with gr.Row():
                    sampler = gr.Dropdown(
                        list(first.samplers),
                        value=first.default_sampler,
                        label="Sampler",
                        visible=bool(first.samplers),
                    )
                    steps = gr.Slider(1, first.max_steps, value=first.default_steps, step=1, label="Steps")
                with gr.Row():
                    seconds = gr.Slider(
                        lim.min_seconds,
                        lim.max_seconds,
                        value=min(DEFAULT_SECONDS, lim.max_seconds),
                        step=0.5,
                        label="Length (seconds)",
                    )
                    num = gr.Slider(1, lim.max_samples, value=1, step=1, label="Samples")
                with gr.Row():
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                    guidance = gr.Slider(0.0, 10.0, value=2.5, step=0.5, label="Text guidance")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
                if any_emotions:
                    gr.Examples([list(e) for e in EXAMPLES], inputs=[prompt, emotion], label="Examples")
                else:
                    gr.Examples([[e[0]] for e in EXAMPLES], inputs=[prompt], label="Examples")
            with gr.Column(scale=1):
                video = gr.Video(
                    label="Animation",
                    show_label=False,
                    autoplay=True,
                    loop=True,
                    interactive=False,
                    elem_id="animation",
                )
                status = gr.Markdown(elem_id="status")
                files = gr.File(
                    label="Downloads (.npy features and joints, .bvh, .mp4)",
                    file_count="multiple",
                    interactive=False,
                    elem_id="downloads",
                )
        with gr.Tab("Restyle", visible=any_restyle):
            gr.Markdown(
                "Upload a motion (.bvh, or a joints or features .npy) and re-express it in an emotion: strength "
                "0 gives it back, 1 generates freely; the length is kept and, at low strength, its path and timing."
            )
            with gr.Row():
                with gr.Column(scale=1):
                    clip = gr.File(label="Clip", file_types=[".bvh", ".npy"], type="filepath", elem_id="clip")
                    r_model = gr.Dropdown(restyle_models, value=restyle_models[0] if restyle_models else None,
                                          label="Model", elem_id="restyle_model")  # fmt: skip
                    with gr.Row():
                        r_emotion = gr.Dropdown(list(EMOTIONS), value="Sadness", label="Emotion")
                        r_intensity = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Intensity")
                    r_strength = gr.Slider(0.0, 1.0, value=0.6, step=0.05, label="Strength")
                    with gr.Row():
                        r_steps = gr.Slider(
                            1, first.max_steps, value=first.default_steps, step=1, label="Steps"
                        )
                        r_seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                    r_button = gr.Button("Restyle", variant="primary", elem_id="restyle")
                with gr.Column(scale=1):
                    r_video = gr.Video(label="Restyled", show_label=False, autoplay=True, loop=True,
                                       interactive=False, elem_id="restyled")  # fmt: skip
                    r_status = gr.Markdown(elem_id="restyle_status")
                    r_files = gr.File(label="Downloads", file_count="multiple", interactive=False)
            r_inputs = [clip, r_model, r_emotion, r_strength, r_intensity, r_steps, r_seed]
            # values reach the runner as sent (it checks each one); the clip must lie in the upload folder
            r_button.click(on_restyle, inputs=r_inputs, outputs=[r_video, r_files, r_status],
                           api_name="restyle", concurrency_id="gen", preprocess=False)  # fmt: skip
        model.change(on_model, inputs=model, outputs=[emotion, intensity, sampler, steps, info])
        inputs = [prompt, model, emotion, intensity, sampler, steps, seconds, num, seed, guidance]
        outputs = [video, files, status]
        # preprocess=False: the values reach DemoRunner as sent, and it checks each one with a message
        # naming it (gradio's own slider check fails on a string with a bare TypeError and a traceback)
        events = {"inputs": inputs, "outputs": outputs, "concurrency_id": "gen", "preprocess": False}
        button.click(on_generate, api_name="generate", **events)  # type: ignore[arg-type]
        prompt.submit(on_generate, **events)  # type: ignore[arg-type]
    demo.queue(default_concurrency_limit=1, max_size=lim.queue_size)
    return demo


@dataclass
class RunningApp:
    """A served demo: its address, and ``close()`` to stop it."""

    demo: Any
    runner: DemoRunner
    url: str

    previous_temp_dir: str | None = None

    def close(self) -> None:
        self.demo.close(verbose=False)
        if self.previous_temp_dir is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = self.previous_temp_dir

    def wait(self) -> None:
        """Block until interrupted (Ctrl-C), then stop the server."""
        try:
            self.demo.block_thread()
        finally:
            self.close()


def launch_app(runner: DemoRunner, *, host: str = "127.0.0.1", port: int = 7860) -> RunningApp:
    """Serve the page in a background thread; only ``runner.out`` is reachable for files."""
    gr = _gradio()
    if host not in LOCAL_HOSTS:
        log.warning("serving on %s: the demo is reachable from other machines", host)
    theme = gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(MONO_FONTS))
    previous = _gradio_files_in(runner.out)
    demo = build_app(runner)
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=True,
        share=False,
        inbrowser=False,
        quiet=True,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        allowed_paths=[str(runner.out)],
        theme=theme,
    )
    log.info("emomotion demo on %s (files under %s)", url, runner.out)
    return RunningApp(demo, runner, url, previous)


def serve(config: ServeConfig) -> RunningApp:
    """Load every model once, then serve the page; returns the running app (see ``RunningApp.wait``)."""
    _gradio()  # fail before loading models when gradio is missing
    out = config.out or Path(tempfile.mkdtemp(prefix="emomotion-serve-"))
    models = load_models(
        config.models, config.limits, device=config.device, text_encoder_path=config.text_encoder_path
    )
    runner = DemoRunner(models, out, config.limits)
    return launch_app(runner, host=config.host, port=config.port)
