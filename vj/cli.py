"""The `vj` command: live show, offline render, demo, devices, and the areas' own subcommands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from vj import __version__, cli_checks

# Areas that add their own subcommands through `register(subparsers)`.
_COMMAND_MODULES = (
    "vj.audio.commands",
    "vj.gan.commands",
    "vj.gan.export",
    "vj.gan.train_commands",
    "vj.control.commands",
    "vj.control.tempo_commands",
    "vj.render.commands",
    "vj.profile.commands",
)

DEMO_OUT = "vj-demo.mp4"


class UserError(Exception):
    """A problem with the user's input: printed without a traceback, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["auto", *(argv or [])])
    try:
        with _terminate_as_interrupt():
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"vj: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        extra = cli_checks.missing_extra(exc)
        if extra is None:
            raise
        print(f"vj: {extra}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("vj: interrupted", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)


def _terminate_as_interrupt():
    """SIGTERM/SIGHUP unwind like Ctrl-C, so recordings are finalised or cleaned up."""
    import contextlib

    try:
        from vj.render.record import terminate_as_interrupt
    except ImportError:  # PyAV missing: nothing records, nothing to clean up
        return contextlib.nullcontext()
    return terminate_as_interrupt()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vj",
        description="Real-time StyleGAN2 visuals driven by audio and MIDI. With no command: "
        "opens the live window if there is a display (listening to the default input, or the "
        "demo track if there is none); with no display, renders a demo video.",
    )
    p.add_argument("--version", action="version", version=f"vj {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("auto", help="what `vj` alone does")
    _live_args(a)
    a.add_argument(
        "-o", "--output", default=DEMO_OUT, help="demo video path when there is no display"
    )
    a.set_defaults(func=cmd_auto)

    live = sub.add_parser(
        "live", help="the live show: window (or --headless), audio in, MIDI/OSC control"
    )
    _live_args(live)
    live.set_defaults(func=cmd_live)

    r = sub.add_parser("render", help="render an audio file to an MP4 offline (deterministic)")
    r.add_argument("audio", nargs="?", help="audio file (WAV, FLAC, OGG, MP3 ...)")
    r.add_argument("-o", "--output", required=True, help="output .mp4")
    r.add_argument(
        "--session",
        default=None,
        metavar="DIR",
        help="re-render a session recorded with `vj live --record-session DIR` (its audio, "
        "events, preset, seed and model; --size/--fps/--checkpoint override)",
    )
    r.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="split the render into shards on Ray: a local cluster, or ADDRESS "
        '(host:port or auto); needs pip install -e ".[cluster]"',
    )
    r.add_argument("--shards", type=int, default=None, help="Ray shards (default: cluster size)")
    _render_args(r)
    r.set_defaults(func=cmd_render)

    d = sub.add_parser("demo", help="synthesise the demo track and render it to an MP4")
    d.add_argument("-o", "--output", default=DEMO_OUT)
    d.add_argument("--seconds", type=cli_checks.positive_float(3600.0), default=24.0)
    d.add_argument("--bpm", type=cli_checks.positive_float(400.0), default=124.0)
    _render_args(d)
    d.set_defaults(func=cmd_demo)

    dev = sub.add_parser("devices", help="list audio inputs and MIDI ports")
    dev.set_defaults(func=cmd_devices)

    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            print(f"vj: commands from {name} unavailable: {exc}", file=sys.stderr)
            continue
        register = getattr(mod, "register", None)
        if register is not None:
            register(sub)
    return p


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", help="preset name (in presets/) or YAML path")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="generator checkpoint (.safetensors/.pkl/.pt); "
        "default: the preset's, else the embedded default",
    )
    p.add_argument("--seed", type=int, default=None, help="latent seed (default: the preset's)")
    p.add_argument("--size", type=_size, default=None, help="WxH output size, e.g. 1280x720")
    p.add_argument("--effect", default=None, help="effect shader name in shaders/effects/")


def _render_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument("--fps", type=cli_checks.int_in(1, 240), default=30)
    p.add_argument("--hud", action="store_true", help="burn the HUD into the video")
    p.add_argument(
        "--probe",
        action="store_true",
        help="draw the latency probe's marker (the frame's onset count, as vj profile does live)",
    )
    p.add_argument(
        "--threads", type=cli_checks.int_in(1, 256), default=None, help="torch CPU threads"
    )
    p.add_argument("--no-progress", action="store_true")
    _show_render_args(p)
    _engine_args(p)


def _show_render_args(p: argparse.ArgumentParser) -> None:
    """The Show's offline options: replay an event log, render a frame range (a shard)."""
    p.add_argument("--events", default=None, help="replay this event log (JSON lines)")
    p.add_argument(
        "--frames", type=_frame_range, default=None, help="render frames A:B only (a shard)"
    )
    p.add_argument("--deck-b", default=None, help="checkpoint for a second deck (deck B)")


def _frame_range(text: str) -> range:
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"frames must be A:B, e.g. 0:300, not {text!r}") from None
    if not 0 <= a < b:
        raise argparse.ArgumentTypeError(f"frames {text}: need 0 <= A < B")
    return range(a, b)


def _live_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument(
        "--input",
        dest="input_device",
        default=None,
        help="audio input device (index or name substring); default: the system's",
    )
    p.add_argument("--file", default=None, help="play this audio file as the input (looped)")
    p.add_argument("--demo", action="store_true", help="use the synthetic demo track as the input")
    p.add_argument("--sample-rate", type=cli_checks.int_in(8000, 384000), default=None)
    p.add_argument("--block-size", type=cli_checks.int_in(16, 8192), default=None)
    p.add_argument(
        "--channel", type=int, default=None, help="analyse this input channel (default: downmix)"
    )
    p.add_argument("--fullscreen", action="store_true")
    p.add_argument("--monitor", default=None, help="monitor index or name for fullscreen")
    p.add_argument("--no-vsync", action="store_true")
    p.add_argument("--headless", action="store_true", help="no window: render offscreen (EGL)")
    p.add_argument("--record", default=None, help="headless: record the output to this MP4")
    p.add_argument(
        "--record-session",
        default=None,
        metavar="DIR",
        help="log the audio, control events, seeds and models to DIR (re-render with "
        "`vj render --session DIR`)",
    )
    p.add_argument(
        "--duration",
        type=cli_checks.positive_float(),
        default=None,
        help="stop after this many seconds",
    )
    p.add_argument(
        "--midi", default=None, help="MIDI input port pattern (regex); overrides the preset"
    )
    p.add_argument("--no-midi", action="store_true")
    p.add_argument(
        "--osc-port",
        type=cli_checks.int_in(0, 65535),
        default=None,
        help="OSC server port (0 = off)",
    )
    p.add_argument("--link", action="store_true", help="join an Ableton Link session (aalink)")
    p.add_argument("--deck-b", default=None, help="checkpoint for a second deck (deck B)")
    p.add_argument("--operator", action="store_true", help="open the operator window too")
    p.add_argument(
        "--send",
        action="append",
        choices=("ndi", "vcam", "spout", "syphon"),
        help="send the output to other software (repeatable); see the preset's stage.outputs",
    )
    p.add_argument(
        "--output-size", type=_size, default=None, help="WxH output, independent of the window"
    )
    _engine_args(p)


def _engine_args(p: argparse.ArgumentParser) -> None:
    from vj.gan.options import add_engine_args  # --device --dtype --backend --cuda-graphs

    add_engine_args(p)


def engine_spec(args, preset, **fields):
    """The engine choice for a command: its flags over the preset's `generator:` section."""
    from vj.gan.options import EngineOptionError, spec_from

    try:
        return spec_from(args, preset.generator, **fields)
    except EngineOptionError as exc:
        raise UserError(str(exc)) from exc


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 1280x720, not {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192) or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size {text}: width and height must be even, 16..8192")
    return w, h


# -- presets ------------------------------------------------------------------------------
def load_preset_or_default(name: str, registry, strict: bool = False):
    """Load a preset; a broken one is reported (file:line) and the built-in default used
    (live: the show goes on), or, with `strict` (batch renders), a UserError (exit 2)."""
    from vj.preset import PresetError, apply_preset, builtin_preset_path, load_preset

    path = Path(name)
    try:
        if not (path.suffix in (".yaml", ".yml") or path.exists()):
            path = builtin_preset_path(name)
    except PresetError as exc:  # an unknown name is a typo, not a broken file: never guess
        raise UserError(f"--preset {name}: {exc.problem}") from None
    try:
        preset = load_preset(path, registry)
    except (PresetError, OSError) as exc:
        if name == "default":
            raise UserError(f"the built-in preset is broken: {exc}") from exc
        if strict:
            raise UserError(str(exc)) from None
        print(f"vj: {exc}\nvj: carrying on with the default preset", file=sys.stderr)
        preset = load_preset(builtin_preset_path("default"), registry)
    for w in preset.warnings:
        print(f"vj: {w}", file=sys.stderr)
    apply_preset(preset, registry)
    return preset


# -- commands -----------------------------------------------------------------------------
def cmd_render(args) -> int:
    from vj.audio.source import read_audio

    if args.session:
        if args.audio:
            raise UserError("give either an audio file or --session DIR, not both")
        return _render_session(args)
    if not args.audio:
        raise UserError("render needs an audio file (or --session DIR)")
    try:
        audio, sr = read_audio(args.audio)
    except (OSError, ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from exc
    return _render(args, audio, sr)


def cmd_demo(args) -> int:
    from vj.audio.source import demo_track

    sr = 48000
    return _render(args, demo_track(sr, seconds=args.seconds, bpm=args.bpm), sr)


def _render_session(args) -> int:
    from vj.params import default_registry
    from vj.show.session import SessionError, read_session

    if getattr(args, "events", None):
        raise UserError("--session replays its own event log; drop --events")
    try:
        sess = read_session(args.session)
    except SessionError as exc:
        raise UserError(str(exc)) from exc
    m = sess.meta
    registry = default_registry()
    args.preset = _session_preset(sess)
    preset = load_preset_or_default(args.preset, registry)
    for name, v in (m.get("params_at_start") or {}).items():  # the state the show began in
        if name in registry and registry.spec(name).kind != "trigger":
            registry.set(name, float(v), "session")
    if args.seed is None and isinstance(m.get("seed"), int):
        args.seed = m["seed"]
    if args.checkpoint is None and m.get("checkpoint"):
        args.checkpoint = m["checkpoint"]
    if args.effect is None and m.get("effect"):
        args.effect = m["effect"]
    if args.size is None and m.get("size"):
        args.size = tuple(m["size"])
    if getattr(args, "deck_b", None) is None and m.get("deck_b"):
        args.deck_b = m["deck_b"]
    if len(sess.audio) == 0:
        raise UserError(f"{args.session}: the session has no audio")
    args.live_input = bool(m.get("live_input", False))
    # the log goes through the Show on the offline clock: keyframe jumps, cues and preset
    # morphs are decided again at the same beats, not only the parameter values
    events = sess.offline_events()
    code = _render(args, sess.audio, sess.sample_rate, registry, preset, events)
    print(f"vj: replayed {len(events)} control events through the Show")
    return code


def _session_preset(sess) -> str:
    """The preset a session played: its original file while unchanged (cue and preset-switch
    names resolve beside it), else the copy kept in the session, else the name."""
    from vj.show.session import file_sha256

    m = sess.meta
    orig = m.get("preset_file")
    ok = isinstance(orig, str) and Path(orig).is_file() and m.get("preset_sha256")
    if ok and file_sha256(orig) == m["preset_sha256"]:  # a regular file only: never a device
        return orig
    if sess.preset_path is not None:
        return str(sess.preset_path)
    return str(m.get("preset", "default"))


def _render(args, audio, sr, registry=None, preset=None, events=None) -> int:
    from vj.offline import RenderJob, render
    from vj.params import default_registry

    if registry is None:
        registry = default_registry()
        preset = load_preset_or_default(args.preset, registry, strict=True)
    w, h = args.size or (preset.render.width, preset.render.height)
    out = Path(args.output)
    if out.suffix.lower() != ".mp4":
        raise UserError(f"{out}: the output must be an .mp4 file")
    cli_checks.check_output(str(out), "-o")
    cli_checks.check_effect(args.effect)
    if events is None and getattr(args, "events", None):
        from vj.show.events import EventLogError, read_event_log

        try:
            events = tuple(read_event_log(args.events))
        except EventLogError as exc:
            raise UserError(str(exc)) from exc
    events = tuple(events or ())
    job = RenderJob(
        audio=audio,
        sample_rate=sr,
        out=out,
        width=w,
        height=h,
        fps=args.fps,
        seed=args.seed,  # None: the preset's (its decks' when it has them)
        checkpoint=args.checkpoint,
        effect=args.effect or preset.effect,
        chains=_chains(preset, args.effect),
        fit=preset.stage.fit,
        upscale=preset.stage.upscale,
        hop=preset.audio.hop,
        n_bands=preset.audio.n_bands,
        hud=args.hud,
        probe=getattr(args, "probe", False),
        threads=args.threads,
        progress=not args.no_progress,
        events=events,
        frames=getattr(args, "frames", None),
        deck_b=getattr(args, "deck_b", None),
        preset=preset,
        engine=engine_spec(args, preset, threads=args.threads),
        live_input=getattr(args, "live_input", False),
    )
    from vj.render.record import RecordingError

    ray_address = getattr(args, "ray", None)
    try:
        if ray_address is not None:
            written = _render_on_ray(job, registry, ray_address, args.shards)
        else:
            written = render(job, registry)
    except (*_checkpoint_errors(), RecordingError) as exc:
        raise UserError(str(exc)) from exc
    except ValueError as exc:  # a frame range outside the audio, audio too short
        raise UserError(str(exc)) from exc
    print(
        f"vj: wrote {written.resolve()} ({w}x{h}, {args.fps} fps, "
        f"{audio.shape[0] / sr:.1f} s, H.264 + AAC)"
    )
    return 0


def _stage_options(args, preset, size: tuple[int, int]) -> dict:
    """LiveOptions fields for the stage: chains, fit, upscale, and a Stage when the preset
    sets an output size or outputs, or --operator / --send / --output-size ask for one."""
    from vj.render.stage import StageOptions

    st = preset.stage
    sends = tuple(st.outputs) + tuple(k for k in (args.send or []) if k not in st.outputs)
    out = args.output_size or st.output
    kw: dict = {"chains": _chains(preset, args.effect), "fit": st.fit, "upscale": st.upscale}
    if out or sends or args.operator:
        if args.headless:
            raise UserError("--operator, --send and stage outputs need the window (no --headless)")
        kw["stage"] = StageOptions(
            output=out or size, outputs=sends, name=st.name, fps=float(preset.render.fps)
        )
        kw["operator"] = bool(args.operator)
    return kw


def _chains(preset, effect: str | None) -> dict | None:
    """The preset's effect chains; `--effect NAME` replaces the master chain with NAME alone."""
    from vj.render.effects import EffectError, check_effect_name

    chains = dict(preset.effects or {})
    if effect:
        try:
            check_effect_name(effect)
        except EffectError as exc:
            raise UserError(f"--effect: {exc}") from None
        chains["master"] = (effect,)
    return chains or None


def _render_on_ray(job, registry, address: str, shards: int | None):
    from vj.render.cluster import ClusterUnavailable, render_ray

    if job.frames is not None:
        raise UserError("--ray renders every frame in shards of its own; drop --frames")
    if shards is not None and shards < 1:
        raise UserError(f"--shards {shards}: must be at least 1")
    try:
        return render_ray(job, registry, address, shards)
    except ClusterUnavailable as exc:
        raise UserError(str(exc)) from exc


def _engine_errors() -> type[BaseException]:
    from vj.gan.options import EngineOptionError  # a network that does not fit the spec

    return EngineOptionError


def _checkpoint_errors() -> tuple[type[BaseException], ...]:
    try:
        from vj.gan.checkpoint import CheckpointError

        return (CheckpointError,)
    except ImportError:
        return ()


def cmd_auto(args) -> int:
    from vj.render.window import display_available

    why = display_available()
    if why is None:
        return cmd_live(args)
    print(f"vj: no display ({why}); rendering a demo video instead of opening the live window")
    from vj.audio.source import demo_track

    demo = argparse.Namespace(**vars(args))
    demo.fps, demo.hud, demo.threads, demo.no_progress = 30, False, None, False
    demo.events, demo.frames, demo.deck_b = None, None, None
    sr = 48000
    return _render(demo, demo_track(sr, seconds=24.0, bpm=124.0), sr)


def cmd_live(args) -> int:
    from vj.clock import now_ns
    from vj.live import LiveApp, LiveOptions
    from vj.params import default_registry
    from vj.show.frame import ControlEvent

    _check_live_args(args)
    registry = default_registry()
    preset = load_preset_or_default(args.preset, registry)
    w, h = args.size or (preset.render.width, preset.render.height)
    tap, clock, link, arbiter = _tempo(args)
    audio_in = build_audio(args, preset, arbiter)
    options = LiveOptions(
        width=w,
        height=h,
        fps=float(preset.render.fps),
        headless=args.headless,
        fullscreen=args.fullscreen or preset.render.fullscreen,
        monitor=_monitor(args.monitor) if args.monitor is not None else preset.render.monitor,
        vsync=not args.no_vsync and preset.render.vsync,
        duration=args.duration,
        effect=args.effect or preset.effect,
        seed=args.seed,  # None: the preset's (its decks' when it has them)
        checkpoint=args.checkpoint,
        engine=engine_spec(args, preset),
        record=args.record,
        deck_b=getattr(args, "deck_b", None),
        **_stage_options(args, preset, (w, h)),
    )
    try:
        app = LiveApp(
            registry,
            audio_in,
            options,
            preset=preset,
            tempo_sources={k: v for k, v in (("link", link), ("clock", clock)) if v is not None},
        )
    except (*_checkpoint_errors(), _engine_errors()) as exc:
        raise UserError(str(exc)) from exc
    from vj.control.osc_presets import RateLimitedReport
    from vj.preset import PresetSwitcher

    def switched(p) -> None:  # the switch reaches the Show as one event: it morphs, not cuts
        app.show.add_preset(p.name, p)
        app.send_event(ControlEvent(now_ns(), "preset", "preset", p.name))
        print(f"vj: preset {p.name}")

    switcher = PresetSwitcher(  # MIDI program change and OSC /vj/preset, /vj/cue
        registry,
        preset,
        on_switch=switched,
        on_error=RateLimitedReport(lambda m: print(f"vj: {m}", file=sys.stderr)),
    )
    on_cue = None
    if len(app.show.cues):  # a cue list: OSC /vj/cue N fires cue N
        on_cue = lambda n: app.send_event(ControlEvent(now_ns(), "osc", "cue.goto", n))  # noqa: E731
    session = _start_session(args, app, registry, preset, options) if args.record_session else None
    controllers = start_controllers(args, preset, registry, clock, switcher, on_cue)
    for c in controllers:  # every MIDI message lights the HUD's MIDI line
        if getattr(c, "mapper", None) is not None:
            app.attach_midi(c.mapper)
    from vj.control.tempo_sources import tempo_hud_text

    app.options.extra_hud.append(lambda: tempo_hud_text(app.show.arbiter))
    app.options.extra_hud.append(lambda: _audio_status(app))
    app.options.learn = _learn_session(controllers, preset)
    app.options.extra_hud += [
        c.summary for c in controllers if hasattr(c, "summary") and callable(c.summary)
    ]
    try:
        app.run()
    finally:
        for c in controllers:
            c.stop()
        if link is not None:
            link.stop()
        if session is not None:
            _finish_session(session, app, registry)
    rep = app.latency_report()
    if len(rep["total"]):
        import numpy as np

        t = rep["total"]
        print(
            f"vj: audio→screen latency p50 {np.percentile(t, 50):.1f} ms, "
            f"p95 {np.percentile(t, 95):.1f} ms over {len(t)} frames"
        )
    return 0


def _check_live_args(args) -> None:
    """What `vj live` can refuse before opening anything: a clear message, exit 2."""
    cli_checks.check_effect(args.effect)
    if args.record:
        if not args.headless:
            raise UserError("--record works with --headless (record the window with OBS for now)")
        cli_checks.check_output(args.record, "--record")
        _check_record_path(Path(args.record))
    if not args.headless and args.command == "live":
        from vj.render.window import display_available

        why = display_available()
        if why is not None:
            raise UserError(
                f"cannot open the live window ({why}); run `vj live --headless` "
                f"(add --record out.mp4 to keep the output) or start it from a desktop session"
            )


def _audio_status(app) -> str:
    """The HUD line for the audio input: empty while it is fine, "audio input lost ..." not."""
    source = getattr(app.audio, "source", None)
    return str(getattr(source, "status", "") or "")


def _start_session(args, app, registry, preset, options):
    """`--record-session DIR`: the input audio (an audio tap) and every ControlEvent the Show
    receives (an event tap: registry writes, presets, cues, tempo, effects) into a
    vj.show.session.SessionWriter. The event log is the session."""
    from vj.show.session import SessionError, SessionWriter

    triggers = {n for n in registry.names() if registry.spec(n).kind == "trigger"}
    meta = {
        "vj": __version__,
        "preset": preset.name,
        "preset_file": str(Path(preset.path).resolve()) if preset.path else None,
        "seed": options.seed,
        "checkpoint": options.checkpoint,
        "deck_b": options.deck_b,
        "effect": options.effect,
        "size": [options.width, options.height],
        "fps": options.fps,
        "device": options.device,
        "params_at_start": registry.snapshot(),
        # a sound card joined a song: the replay analyses its audio as live too (no start prior)
        "live_input": bool(getattr(getattr(app.show, "extractor", None), "live", False)),
    }
    sr = app.audio.sample_rate if app.audio is not None else 48000
    try:
        writer = SessionWriter(
            args.record_session, sr, 2, meta, preset.path, trigger_names=triggers
        )
    except (SessionError, OSError) as exc:
        raise UserError(f"--record-session: {exc}") from exc
    app.event_taps.append(writer.event)
    app.audio_taps.append(writer.push_audio)
    return writer


def _finish_session(writer, app, registry) -> None:
    from vj.show.session import SessionError

    if writer.event in app.event_taps:
        app.event_taps.remove(writer.event)
    if writer.push_audio in app.audio_taps:
        app.audio_taps.remove(writer.push_audio)
    try:
        folder = writer.close()
        print(
            f"vj: session saved in {folder} ({writer.meta['samples'] / writer.sample_rate:.1f} s "
            f"audio, {writer.n_events} events); re-render: vj render --session {folder}",
            file=sys.stderr,
        )
    except SessionError as exc:
        print(f"vj: {exc}", file=sys.stderr)


def _check_record_path(out: Path) -> None:
    if out.suffix.lower() != ".mp4":
        raise UserError(f"--record {out}: the recording must be an .mp4 file")


def _monitor(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _tempo(args):
    """Link > MIDI clock > tap; the audio beat tracker adds itself below them."""
    from vj.control.clock_sync import MidiClock
    from vj.control.tempo_sources import build_tempo_arbiter
    from vj.tempo import TapTempo

    tap, clock, link = TapTempo(), MidiClock(), None
    if args.link:
        from vj.control.link import LinkTempo, LinkUnavailable

        link = LinkTempo()
        try:
            link.start()
        except LinkUnavailable as exc:
            print(f"vj: Ableton Link off: {exc}", file=sys.stderr)
            link = None
    return tap, clock, link, build_tempo_arbiter(None, tap, clock, link)


def build_audio(args, preset, arbiter):
    """Choose the audio input: --file / --demo / a live device, falling back to the demo track."""
    from vj.audio import source as src
    from vj.audio.stream import FeatureExtractor
    from vj.live import AudioInput

    cfg = preset.audio
    block = args.block_size or cfg.block_size
    device = args.input_device if args.input_device is not None else cfg.device
    sr = args.sample_rate or cfg.sample_rate
    channel = args.channel if args.channel is not None else cfg.channel

    factory = None
    card = False  # a sound card, not a file or the demo track
    if args.file:
        try:
            samples, file_sr = src.read_audio(args.file)
        except (OSError, ValueError, RuntimeError) as exc:
            raise UserError(str(exc)) from exc
        sr = file_sr
        factory = _playback(src, samples, file_sr, block)
    elif not args.demo:
        problem = src.portaudio_problem()
        if problem is None:
            try:
                live = src.LiveSource(
                    lambda b, t: None, device=device, sample_rate=sr, block_size=block
                )
                sr = live.sample_rate
                factory = _live(src, device, sr, block)
                card = True
            except src.AudioDeviceError as exc:
                if args.input_device is not None:
                    raise UserError(str(exc)) from exc
                print(
                    f"vj: {exc}\nvj: no usable audio input; playing the demo track instead",
                    file=sys.stderr,
                )
        else:
            print(
                f"vj: no audio input ({problem}); playing the demo track instead", file=sys.stderr
            )
    if factory is None:
        sr = 48000
        factory = _playback(src, src.demo_track(sr), sr, block)

    # the analysis' own arbiter holds only the beat tracker: tap, MIDI clock and Link are the
    # Show's (they reach it as events), so live and offline analyse alike
    # a sound card joins whatever is playing: its first sound is no beat 1 (`live`)
    extractor = FeatureExtractor(sr, hop=cfg.hop, n_bands=cfg.n_bands, channel=channel, live=card)
    del arbiter
    return AudioInput(factory, extractor)


def _playback(src, samples, sr, block):
    return lambda on_block: src.PlaybackSource(on_block, samples, sr, block_size=block, loop=True)


def _live(src, device, sr, block):
    return lambda on_block: src.LiveSource(
        on_block, device=device, sample_rate=sr, block_size=block
    )


def start_controllers(args, preset, registry, clock, switcher, on_cue=None) -> list:
    """MIDI in (per the preset or --midi) and the OSC server. Problems are reported, not fatal."""
    started: list = []
    if not args.no_midi:
        started += _start_midi(args, preset, registry, clock, switcher)
    port = args.osc_port if args.osc_port is not None else _osc_port(preset)
    if port:
        try:
            from vj.control.osc import OscServer

            osc = OscServer(
                registry,
                host=preset.osc.get("host", "127.0.0.1"),
                port=port,
                on_preset=_osc_preset_gate(preset, switcher),
                on_cue=on_cue or switcher.switch,  # cue n: the cue list's, else program n
            )
            osc.start()
            started.append(osc)
            print(f"vj: OSC on {preset.osc.get('host', '127.0.0.1')}:{osc.port}")
        except (ImportError, OSError) as exc:
            print(f"vj: OSC server not started: {exc}", file=sys.stderr)
    return started


def _osc_preset_gate(preset, switcher):
    """OSC may load presets from the shipped folder and the current preset's folder only."""
    from vj.control.osc_presets import PresetGate, RateLimitedReport
    from vj.preset import presets_dir

    folders = [presets_dir()] + ([preset.path.parent] if preset.path is not None else [])
    report = switcher.on_error or RateLimitedReport(lambda m: print(f"vj: {m}", file=sys.stderr))
    anywhere = preset.osc.get("presets_anywhere") is True
    return PresetGate(switcher.switch_name, folders, report, anywhere=anywhere)


def _osc_port(preset) -> int:
    osc = preset.osc or {}
    return int(osc.get("port", 9000)) if osc.get("enabled", False) else 0


def _start_midi(args, preset, registry, clock, switcher) -> list:
    from dataclasses import replace

    from vj.control.midi import MidiError, open_devices

    midi = preset.midi
    if args.midi:  # one device matching --midi, with every mapping of the preset
        mappings = tuple(m for d in midi.devices for m in d.mappings)
        midi = replace(midi, devices=(_midi_device(args.midi, mappings),))
    if not midi.devices:
        return []

    def event(msg: str) -> None:
        print(f"vj: {msg}", file=sys.stderr)

    try:
        return open_devices(
            midi, registry, on_program=switcher.switch, on_realtime=clock.feed, on_event=event
        )
    except MidiError as exc:
        print(f"vj: MIDI off: {exc}", file=sys.stderr)
        return []


def _learn_session(controllers, preset):
    """MIDI learn from the window's keys, on the first MIDI input, saved to its mappings file."""
    from vj.control.learn import LearnSession, default_mappings_path

    for c in controllers:
        mapper = getattr(c, "mapper", None)
        if mapper is not None:
            files = [d.mappings_file for d in preset.midi.devices if d.mappings_file]
            return LearnSession(mapper, files[0] if files else default_mappings_path())
    return None


def _midi_device(port: str, mappings):
    from vj.preset import MidiDevice

    return MidiDevice(port=port, mappings=mappings, feedback=True)


def cmd_devices(args) -> int:
    from vj.audio.source import list_input_devices, portaudio_problem

    print("Audio inputs:")
    problem = portaudio_problem()
    if problem:
        print(f"  (none: {problem})")
    for d in list_input_devices():
        print(f"  {d}")
    print("MIDI inputs:")
    try:
        from vj.control.midi import list_midi_ports

        ports = list_midi_ports()
        for p in ports:
            print(f"  {p}")
        if not ports:
            print("  (none)")
    except Exception as exc:  # rtmidi raises its own error types when no MIDI system exists
        print(f"  (none: {exc})")
    print("Outputs (--send, stage.outputs):")
    from vj.render.outputs import KINDS, available

    for kind in KINDS:
        print(f"  {kind}: {available(kind) or 'available'}")
    jack = os.environ.get("JACK_DEFAULT_SERVER")
    if jack:
        print(f"(JACK server: {jack})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
