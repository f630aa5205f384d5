"""The ``sepcore`` command: separate your own audio, list the methods, inspect a checkpoint.

::

    sepcore separate mix.wav --method average --sources drums bass --out stems/
    sepcore separate mix.flac --method crossover --knob cutoff_hz=200 --out stems/
    sepcore list-methods
    sepcore info checkpoints/flows/sine.pt

``python -m sepcore ...`` is the same command. ``separate`` writes one 32-bit float WAV per
source (``<out>/<source>.wav``, at the input file's sample rate and aligned with it) and
``<out>/settings.json`` with everything needed to repeat the run: method, knobs, seed,
checkpoint, every conversion applied to the input, versions and timing. Outputs are written
all-or-nothing. Problems a user can fix (unreadable file, silence, a bad checkpoint, an
unknown knob) print one line starting with ``sepcore: error:`` and exit with status 2; any
other failure prints one ``sepcore: internal error:`` line and exits with 1; Ctrl-C or SIGTERM
leaves no partial output and exits with 130 (``--debug`` or ``SEPCORE_DEBUG=1`` shows the
traceback instead). Outputs never replace the input file, and existing outputs are kept unless
``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from sepcore import __version__

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, RuntimeError, OSError)


def _parse_value(text: str, default: object):
    """Convert ``text`` to the type of the knob's default (bool, int, float, str)."""
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def parse_knobs(pairs: list[str], method: str) -> dict:
    """``["sigma=0.1", "n_beams=4"]`` -> ``{"sigma": 0.1, "n_beams": 4}``, typed by the knobs' defaults."""
    from sepcore.api import get_method

    known = get_method(method).knobs()
    knobs = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise ValueError(f"--knob expects NAME=VALUE, got {pair!r}")
        if name not in known:
            raise ValueError(f"method {method!r} has no knob {name!r}; its knobs: {sorted(known) or 'none'}")
        try:
            knobs[name] = _parse_value(text, known[name].default)
        except ValueError as error:
            raise ValueError(f"--knob {name}={text}: {error}") from error
    return knobs


def check_outputs(mixture: Path, out: Path, names: list[str], *, overwrite: bool) -> list[Path]:
    """Refuse outputs that would replace the input, or existing outputs unless ``overwrite``.

    Returns the stems an earlier run listed in ``<out>/settings.json`` that this run will not
    write (removed after a successful ``--overwrite`` run, so no stale stem stays beside new ones).
    """
    targets = [out / f"{n}.wav" for n in names] + [out / "settings.json"]
    source = mixture.resolve()
    for target in targets:
        if target.resolve() == source:
            raise ValueError(f"the output {target} would replace the input file; choose another --out folder")
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise ValueError(f"{out} already holds {', '.join(t.name for t in existing)}; pass --overwrite to replace "
                         "them, or choose another --out folder")
    stale = []
    previous = out / "settings.json"
    if overwrite and previous.exists():
        try:
            listed = json.loads(previous.read_text()).get("outputs", [])
        except (OSError, ValueError, AttributeError):
            listed = []
        keep = {t.name for t in targets}
        stale = [out / name for name in listed if isinstance(name, str) and name not in keep
                 and Path(name).name == name and name.endswith(".wav") and (out / name).resolve() != source]
    return stale


def command_separate(args: argparse.Namespace) -> int:
    from sepcore.api import get_method, separate_with_info
    from sepcore.audio import ensure_writable_dir, load_audio, stem_names, write_outputs
    from sepcore.utils import package_versions

    started = time.perf_counter()
    knobs = parse_knobs(args.knob, args.method)
    get_method(args.method)
    audio = load_audio(args.mixture, min_seconds=args.min_seconds)
    names = stem_names(args.sources)
    stale = check_outputs(Path(args.mixture), Path(args.out), names, overwrite=args.overwrite)
    created = not Path(args.out).exists()
    out = ensure_writable_dir(args.out)                      # fail before the (possibly long) separation
    try:
        estimates, info = separate_with_info(
            audio.samples, args.method, tuple(args.sources), checkpoint=args.checkpoint,
            sample_rate=audio.sample_rate, device=args.device, seed=args.seed,
            chunk_seconds=args.chunk_seconds, overlap_seconds=args.overlap_seconds,
            show_progress=not args.quiet, **knobs,
        )
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()                                      # leave nothing behind
        raise
    notes = list(audio.notes) + list(info.get("input_conversions", []))
    if info["resampled"]:
        low = min(audio.sample_rate, info["method_sample_rate"]) / 2
        notes.append(f"resampled from {audio.sample_rate} Hz to the method's {info['method_sample_rate']} Hz "
                     f"and the estimates back (torchaudio.functional.resample): the stems hold nothing above "
                     f"{low / 1000:.3g} kHz, so above it they no longer add up to the input")
    settings = {
        **info, "input": str(Path(args.mixture).resolve()), "input_sample_rate": audio.original_sample_rate,
        "input_channels": audio.original_channels, "conversions": notes, "outputs": [f"{n}.wav" for n in names],
        "wav_subtype": "FLOAT", "sepcore_version": __version__, "versions": package_versions(),
        "command": " ".join(["sepcore", *args.argv]), "wall_seconds": round(time.perf_counter() - started, 3),
    }
    if created and not any(out.iterdir()):
        out.rmdir()            # a folder this run creates is written whole beside it and renamed in one step
    written = write_outputs(out, dict(zip(names, estimates)), audio.sample_rate, settings=settings)
    for path in stale:                                       # stems of an earlier run that this one did not write
        path.unlink(missing_ok=True)
    if not args.quiet:
        for note in notes:
            print(f"note: {note}")
        for path in written:
            print(f"wrote {path}")
    return 0


def command_list_methods(args: argparse.Namespace) -> int:
    from sepcore.api import list_methods

    rows = []
    for spec in list_methods():
        available, reason = spec.availability()
        knobs = spec.knobs() if available else {}
        rows.append({
            "name": spec.name, "available": available, "reason": reason,
            "needs_checkpoint": spec.needs_checkpoint, "default_checkpoint": spec.default_checkpoint,
            "sample_rate": spec.sample_rate, "chunk_seconds": spec.chunk_seconds,
            "knobs": {name: knob.default for name, knob in knobs.items()}, "description": spec.description,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        rate = f"{row['sample_rate']} Hz" if row["sample_rate"] else "any rate"
        checkpoint = "needs a checkpoint" if row["needs_checkpoint"] else "no checkpoint"
        knobs = ", ".join(f"{k}={v!r}" for k, v in row["knobs"].items()) or "no knobs"
        print(f"{row['name']:<14} {row['description']}")
        if row["available"]:
            print(f"{'':<14} {rate}; {checkpoint}; knobs: {knobs}")
        else:
            print(f"{'':<14} unavailable: {row['reason']}")
    return 0


def _short(value, width: int = 100) -> str:
    """``repr(value)``, or a summary of it when it is longer than ``width`` (``--json`` shows all)."""
    text = repr(value)
    if len(text) <= width:
        return text
    if isinstance(value, (list, tuple, dict)):
        return f"<{type(value).__name__} of {len(value)} items; see --json>"
    return text[: width - 3] + "..."


def command_info(args: argparse.Namespace) -> int:
    from sepcore.checkpoints import read_checkpoint

    path = Path(args.checkpoint)
    payload = read_checkpoint(path)
    summary = {
        "path": str(path), "size_bytes": path.stat().st_size, "format": payload.get("format"),
        "model_class": payload.get("model_class"), "config_class": payload.get("config_class"),
        "config": payload.get("config"), "versions": payload.get("versions"),
        "manifest_hash": payload.get("manifest_hash"), "metadata": payload.get("metadata"),
        "n_parameters": int(sum(t.numel() for t in payload.get("state_dict", {}).values())),
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"checkpoint     {path} ({summary['size_bytes'] / 1e6:.2f} MB, {summary['n_parameters']} parameters)")
    print(f"format         {summary['format']}")
    print(f"model          {summary['model_class']}")
    print(f"manifest hash  {summary['manifest_hash']}")
    print("config")
    for key, value in (summary["config"] or {}).items():
        print(f"  {key:<22} {_short(value)}")
    print("versions")
    for key, value in (summary["versions"] or {}).items():
        print(f"  {key:<22} {value}")
    if summary["metadata"]:
        print("metadata")
        for key, value in summary["metadata"].items():
            print(f"  {key:<22} {_short(value)}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``sepcore: error: ...``, exit status 2), like every other user error."""

    def error(self, message):
        self.exit(2, f"sepcore: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sepcore", description="Unsupervised music source separation.")
    parser.add_argument("--version", action="version", version=f"sepcore {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)

    sep = sub.add_parser("separate", help="separate a sound file into one WAV per source")
    sep.add_argument("mixture", help="input sound file (WAV, FLAC, OGG); stereo is downmixed by the channel mean")
    sep.add_argument("--method", default="average", help="a name from `sepcore list-methods` (default: average)")
    sep.add_argument("--sources", nargs="+", default=["drums", "bass"], help="source names, in output order")
    sep.add_argument("--out", required=True, help="output folder (created if missing)")
    sep.add_argument("--checkpoint", default=None, help="checkpoint for methods with trained models")
    sep.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE", help="a method setting; repeatable")
    sep.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    sep.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical stems")
    sep.add_argument("--chunk-seconds", type=float, default=None, help="override the method's chunk length")
    sep.add_argument("--overlap-seconds", type=float, default=None, help="override the crossfade between chunks")
    sep.add_argument("--min-seconds", type=float, default=0.25, help="reject inputs shorter than this")
    sep.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    sep.add_argument("--overwrite", action="store_true", help="replace stems and settings.json already in --out")
    sep.set_defaults(run=command_separate)

    methods = sub.add_parser("list-methods", help="list the registered methods and their knobs")
    methods.add_argument("--json", action="store_true")
    methods.set_defaults(run=command_list_methods)

    info = sub.add_parser("info", help="show a checkpoint's config, versions and data-manifest hash")
    info.add_argument("checkpoint")
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=command_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    debug = args.debug or bool(os.environ.get("SEPCORE_DEBUG"))
    previous = signal.signal(signal.SIGTERM, _terminate)     # SIGTERM unwinds like Ctrl-C: outputs are cleaned up
    try:
        return args.run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("sepcore: interrupted; nothing was written", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"sepcore: error: {message}", file=sys.stderr)
        return 2
    except Exception as error:
        if debug:
            raise
        print(f"sepcore: internal error: {type(error).__name__}: {error} (please report it; --debug shows the "
              "traceback)", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
