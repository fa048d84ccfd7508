"""A table-driven bad-input suite (issue 6, item 1): CLI, engine API and app handlers.

Every case must give a clear one-line message (no traceback), must not crash anything, and must leave the running
training and the last good checkpoint as they were. The tally (cases tried / clear errors / crashes) is written to
bench/out/bad_input_tally.json when the module finishes.

The CLI cases run in ONE subprocess (a small driver calls `dqngan.cli.main(argv)` for each case with stderr captured),
so the table stays large without paying the torch import ~40 times.
"""

import hashlib
import json
import math
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli_batch

from dqngan.checkpoint import CheckpointError, load_checkpoint, resolve, save_checkpoint
from dqngan.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
TALLY = {"cli": [], "engine": [], "app": []}
TALLY_LOCK = threading.Lock()


def _record(kind, name, clear, crashed, message):
    with TALLY_LOCK:
        TALLY[kind].append({"case": name, "clear": bool(clear), "crash": bool(crashed), "message": message[:300]})


@pytest.fixture(scope="module", autouse=True)
def tally_file():
    yield
    cases = [c for group in TALLY.values() for c in group]
    out = {"cases": len(cases), "clear_errors": sum(c["clear"] for c in cases),
           "crashes": sum(c["crash"] for c in cases),
           "by_area": {k: {"cases": len(v), "clear_errors": sum(c["clear"] for c in v),
                           "crashes": sum(c["crash"] for c in v)} for k, v in TALLY.items()},
           "details": TALLY}
    path = ROOT / "bench" / "out" / "bad_input_tally.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = re.sub(r"/[^\s'\"]*?/pytest-\d+/", "<tmp>/", json.dumps(out, indent=2))  # stable across runs
    path.write_text(text + "\n")
    print(f"\nbad input: {out['cases']} cases, {out['clear_errors']} clear errors, {out['crashes']} crashes")


def _dir_digest(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(path).iterdir()) if p.is_file()}


def _one_line(msg):
    lines = [ln for ln in (msg or "").splitlines() if ln.strip()]
    return len(lines) == 1 and "Traceback" not in msg


def _resign(path):
    """Rewrite manifest.json so a hand-edited checkpoint passes the checksum and reaches the deeper check."""
    from dqngan.checkpoint import _digest

    m = json.loads((path / "manifest.json").read_text())
    m["files"] = {f: _digest(path / f) for f in m["files"]}
    (path / "manifest.json").write_text(json.dumps(m))


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def base_trainer(mnist):
    from dqngan.config import make_config
    from dqngan.trainer import Trainer

    t = Trainer(make_config("tiny"), "cpu", data=mnist)
    t.run(steps=3)
    return t


@pytest.fixture(scope="module")
def bad(tmp_path_factory, base_trainer, mnist):
    """A good checkpoint plus one broken variant per case, and bad dataset folders."""
    import shutil

    from dqngan.config import make_config
    from dqngan.trainer import Trainer

    root = tmp_path_factory.mktemp("bad")
    good = save_checkpoint(base_trainer, root / "good")
    paths = {"good": good, "root": root}

    def variant(name, edit, resign=True):
        p = root / name
        shutil.copytree(good, p)
        edit(p)
        if resign:
            _resign(p)
        paths[name] = p

    def flip(p):
        w = p / "weights.safetensors"
        b = bytearray(w.read_bytes())
        b[-50] ^= 0xFF
        w.write_bytes(bytes(b))

    def truncate(p):
        w = p / "weights.safetensors"
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 3])

    def pickle_file(p):
        torch.save({"G.x": torch.zeros(1)}, p / "weights.safetensors")

    other = Trainer(make_config("tiny", {"width": 0.25}), "cpu", data=mnist)
    wide = save_checkpoint(other, root / "_wide")

    def cfg_edit(**kv):
        def edit(p):
            c = json.loads((p / "config.json").read_text())
            c.update(kv)
            (p / "config.json").write_text(json.dumps(c))  # NaN is written as the JSON extension NaN
        return edit

    variant("corrupt", flip, resign=False)
    variant("truncated", truncate, resign=False)
    variant("truncated_resigned", truncate)
    variant("pickle", pickle_file)
    variant("wide", lambda p: shutil.copy(wide / "weights.safetensors", p / "weights.safetensors"))
    variant("unknown_key", cfg_edit(mystery=1))
    variant("neg_lr", cfg_edit(lr_g=-0.001))
    variant("k0", cfg_edit(n_dirs=0))
    variant("delta_nan", cfg_edit(delta=float("nan")))
    variant("horizon_huge", cfg_edit(horizon=10**9))
    variant("batch0", cfg_edit(batch_size=0))
    variant("width_str", cfg_edit(width="wide"))
    variant("cfg_list", lambda p: (p / "config.json").write_text("[1, 2]"))
    variant("cfg_garbage", lambda p: (p / "config.json").write_bytes(b"\xff\xfe\x00garbage"))
    variant("no_manifest", lambda p: (p / "manifest.json").unlink(), resign=False)
    variant("manifest_list", lambda p: (p / "manifest.json").write_text(
        json.dumps({"format": "dqngan-checkpoint/1", "files": ["weights.safetensors"]})), resign=False)
    variant("state_history", lambda p: (p / "train_state.json").write_text(
        json.dumps(dict(json.loads((p / "train_state.json").read_text()), history=5))))
    variant("state_binary", lambda p: (p / "train_state.json").write_bytes(b"\xff\xfe\xfa binary"))
    for name in ("empty_ck", "not_images", "empty_folder"):
        paths[name] = root / name
        paths[name].mkdir()
    paths["a_file"] = root / "a_file"
    paths["a_file"].write_text("not a checkpoint")
    noimg = paths["not_images"]
    (noimg / "a.png").write_text("this is text, not a PNG")
    (noimg / "b.jpg").write_bytes(b"\x00" * 64)
    (noimg / "notes.txt").write_text("hello")
    paths["digests"] = {k: _dir_digest(v) for k, v in paths.items() if isinstance(v, Path) and v.is_dir()
                        and k != "root" and (v / "config.json").exists()}
    return paths


# ---------------------------------------------------------------------------------------------------- CLI
# (name, argv, words expected in the one-line message). {x} is a path from the `bad` fixture, {root} its folder.
CLI_CASES = [
    ("sample: nonexistent checkpoint", ["sample", "--checkpoint", "{root}/nope", "--out", "{root}/o.npy"],
     "no checkpoint at"),
    ("sample: checkpoint is a file", ["sample", "--checkpoint", "{a_file}", "--out", "{root}/o.npy"], "is a file"),
    ("sample: empty folder as checkpoint", ["sample", "--checkpoint", "{empty_ck}", "--out", "{root}/o.npy"],
     "not a complete checkpoint"),
    ("sample: corrupt weights", ["sample", "--checkpoint", "{corrupt}", "--out", "{root}/o.npy"], "corrupt"),
    ("sample: truncated weights", ["sample", "--checkpoint", "{truncated}", "--out", "{root}/o.npy"], "corrupt"),
    ("sample: truncated weights, manifest re-signed", ["sample", "--checkpoint", "{truncated_resigned}", "--out",
                                                       "{root}/o.npy"], "not a valid safetensors file"),
    ("sample: pickle renamed .safetensors", ["sample", "--checkpoint", "{pickle}", "--out", "{root}/o.npy"],
     "never loaded"),
    ("sample: weights of another width", ["sample", "--checkpoint", "{wide}", "--out", "{root}/o.npy"], "has shape"),
    ("sample: config unknown key", ["sample", "--checkpoint", "{unknown_key}", "--out", "{root}/o.npy"],
     "unknown config key"),
    ("sample: config negative lr", ["sample", "--checkpoint", "{neg_lr}", "--out", "{root}/o.npy"],
     "lr_g must be >= 0"),
    ("sample: config n_dirs=0", ["sample", "--checkpoint", "{k0}", "--out", "{root}/o.npy"], "n_dirs must be >= 1"),
    ("sample: config delta=NaN", ["sample", "--checkpoint", "{delta_nan}", "--out", "{root}/o.npy"], "finite"),
    ("sample: config horizon=10**9", ["sample", "--checkpoint", "{horizon_huge}", "--out", "{root}/o.npy"],
     "horizon must be <="),
    ("sample: config batch_size=0", ["sample", "--checkpoint", "{batch0}", "--out", "{root}/o.npy"],
     "batch_size must be >= 1"),
    ("sample: config width is a string", ["sample", "--checkpoint", "{width_str}", "--out", "{root}/o.npy"],
     "width must be float"),
    ("sample: config is a JSON list", ["sample", "--checkpoint", "{cfg_list}", "--out", "{root}/o.npy"],
     "must be a JSON object"),
    ("sample: config is binary garbage", ["sample", "--checkpoint", "{cfg_garbage}", "--out", "{root}/o.npy"],
     "not valid JSON"),
    ("sample: manifest missing", ["sample", "--checkpoint", "{no_manifest}", "--out", "{root}/o.npy"],
     "missing manifest.json"),
    ("sample: manifest files is a list", ["sample", "--checkpoint", "{manifest_list}", "--out", "{root}/o.npy"],
     "manifest.json"),
    ("sample: train_state history is a number", ["sample", "--checkpoint", "{state_history}", "--out",
                                                 "{root}/o.npy"], "training state"),
    ("sample: train_state.json is binary", ["sample", "--checkpoint", "{state_binary}", "--out", "{root}/o.npy"],
     "unreadable"),
    ("sample: --out in a missing folder", ["sample", "--checkpoint", "{good}", "--out", "{root}/no/dir/o.npy"],
     "does not exist"),
    ("export: corrupt checkpoint", ["export", "--checkpoint", "{corrupt}", "--out", "{root}/exp"], "corrupt"),
    ("train: resume a truncated checkpoint", ["train", "--resume", "{truncated}", "--out", "{root}/t1", "--steps",
                                              "1", "--no-progress"], "corrupt"),
    ("train: resume a pickle", ["train", "--resume", "{pickle}", "--out", "{root}/t2", "--steps", "1",
                                "--no-progress"], "never loaded"),
    ("train: folder of non-images", ["train", "--out", "{root}/t3", "--steps", "1", "--preset", "tiny",
                                     "--dataset", "{not_images}"], "no readable images"),
    ("train: empty folder", ["train", "--out", "{root}/t4", "--steps", "1", "--preset", "tiny", "--dataset",
                             "{empty_folder}"], "no readable images"),
    ("train: --set without '='", ["train", "--out", "{root}/t5", "--steps", "1", "--set", "lr_g"],
     "expects key=value"),
    ("train: --set with empty key", ["train", "--out", "{root}/t6", "--steps", "1", "--set", "=3"],
     "expects key=value"),
    ("train: --set float as text", ["train", "--out", "{root}/t7", "--steps", "1", "--set", "lr_g=fast"],
     "lr_g must be float"),
    ("train: --set n_dirs=0", ["train", "--out", "{root}/t8", "--steps", "1", "--set", "n_dirs=0"],
     "n_dirs must be >= 1"),
    ("train: --set horizon=1e9", ["train", "--out", "{root}/t9", "--steps", "1", "--set", "horizon=1000000000"],
     "horizon must be <="),
    ("train: --set batch_size=0", ["train", "--out", "{root}/t10", "--steps", "1", "--set", "batch_size=0"],
     "batch_size must be >= 1"),
    ("train: --out is a file", ["train", "--out", "{a_file}", "--steps", "1", "--preset", "tiny"],
     "not a directory"),
    ("push: repo id with spaces", ["push", "--checkpoint", "{good}", "--repo-id", "not a repo"], "invalid repo id"),
    ("push: repo id with three parts", ["push", "--checkpoint", "{good}", "--repo-id", "a/b/c"], "invalid repo id"),
    ("push: repo id with '..'", ["push", "--checkpoint", "{good}", "--repo-id", "alice/../etc"], "invalid repo id"),
    ("pull: empty repo id", ["pull", "--repo-id", "", "--out", "{root}/p1"], "invalid repo id"),
    ("pull: repo id too long", ["pull", "--repo-id", "a/" + "x" * 200, "--out", "{root}/p2"], "invalid repo id"),
]

@pytest.fixture(scope="module")
def cli_results(bad, tmp_path_factory):
    fmt = {k: str(v) for k, v in bad.items() if isinstance(v, Path)}
    argvs = [[a.format(**fmt) for a in argv] for _, argv, _ in CLI_CASES]
    out = run_cli_batch(argvs, tmp_path_factory.mktemp("driver"), dict(ENV, HF_TOKEN=""), ROOT)
    return dict(zip([c[0] for c in CLI_CASES], out))


@pytest.mark.parametrize("name,argv,words", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(name, argv, words, cli_results, bad):
    r = cli_results[name]
    msg = r["crash"] or r["stderr"]
    clear = r["crash"] is None and r["rc"] not in (0, None) and _one_line(r["stderr"]) and words in r["stderr"]
    _record("cli", name, clear, r["crash"] is not None, msg.strip())
    assert r["crash"] is None, r["crash"]
    assert r["rc"] not in (0, None), r
    assert _one_line(r["stderr"]), r["stderr"]
    assert words in r["stderr"], r["stderr"]


def test_cli_failures_left_every_checkpoint_unchanged(cli_results, bad):
    for name, want in bad["digests"].items():
        assert _dir_digest(bad[name]) == want, f"{name} changed"
    assert resolve(bad["good"]) == bad["good"]
    t = load_checkpoint(bad["good"], device="cpu")
    assert t.step_count == 3
    assert not (bad["root"] / "exp").exists() and not (bad["root"] / "t1").exists()


# ---------------------------------------------------------------------------------------------------- engine API
@pytest.fixture(scope="module")
def running(mnist):
    """A trainer training in its background thread for the whole engine section."""
    from dqngan.config import make_config
    from dqngan.runner import Runner
    from dqngan.trainer import Trainer

    t = Runner(Trainer(make_config("tiny", {"grid_every": 1000}), "cpu", data=mnist))
    t.start()
    yield t
    t.stop(timeout=10)


ENGINE_SET_CASES = [
    ("set a frozen knob (width)", {"width": 1.0}, "cannot change during a run"),
    ("set an unknown knob", {"nonsense": 1}, "cannot change during a run"),
    ("set negative lr", {"lr_g": -1.0}, "lr_g must be >= 0"),
    ("set lr = NaN", {"lr_d": float("nan")}, "finite"),
    ("set lr = inf", {"q_lr": float("inf")}, "finite"),
    ("set lr as text", {"lr_g": "fast"}, "lr_g must be float"),
    ("set an int knob to a float", {"eps_decay": 2.5}, "eps_decay must be int"),
    ("set log_every = 0", {"log_every": 0}, "log_every must be >= 1"),
    ("set eps_end > eps_start", {"eps_end": 1.0, "eps_start": 0.5}, "eps_end must be <= eps_start"),
    ("set agent_every huge", {"agent_every": 10**12}, "agent_every must be <="),
    ("set a bool for a float knob", {"refined_frac": True}, "refined_frac must be float"),
]


@pytest.mark.parametrize("name,knobs,words", ENGINE_SET_CASES, ids=[c[0] for c in ENGINE_SET_CASES])
def test_engine_set_while_training(name, knobs, words, running):
    before = running.cfg.to_dict()
    step = running.step_count
    crashed, msg = False, ""
    try:
        running.set(**knobs)
    except ConfigError as e:
        msg = str(e)
    except Exception as e:  # anything else is a crash for the tally
        crashed, msg = True, f"{type(e).__name__}: {e}"
    clear = not crashed and _one_line(msg) and words in msg
    _record("engine", name, clear, crashed, msg)
    assert not crashed, msg
    assert words in msg and _one_line(msg)
    assert running.cfg.to_dict() == before  # the config is kept as it was
    deadline = time.monotonic() + 30
    while running.step_count <= step and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.status == "running" and running.error is None and running.step_count > step


def test_engine_step_zero_and_bad_loads_keep_the_run(running, bad):
    cases = [("step(0)", lambda: running.step(0), ValueError, "n >= 1"),
             ("load a corrupt checkpoint", lambda: load_checkpoint(bad["corrupt"], device="cpu"), CheckpointError,
              "corrupt"),
             ("load with an out-of-range override", lambda: load_checkpoint(bad["good"], device="cpu",
                                                                             overrides={"horizon": 10**9}),
              CheckpointError, "horizon must be <="),
             ("load with an unknown override", lambda: load_checkpoint(bad["good"], device="cpu",
                                                                       overrides={"mystery": 1}),
              CheckpointError, "unknown config key(s): mystery"),
             ("load from a path that is a file", lambda: load_checkpoint(bad["a_file"], device="cpu"),
              CheckpointError, "is a file")]
    for name, call, exc, words in cases:
        step = running.step_count
        crashed, msg = False, ""
        try:
            call()
        except exc as e:
            msg = str(e)
        except Exception as e:
            crashed, msg = True, f"{type(e).__name__}: {e}"
        _record("engine", name, not crashed and _one_line(msg) and words in msg, crashed, msg)
        assert not crashed and words in msg and _one_line(msg), msg
        deadline = time.monotonic() + 30
        while running.step_count <= step and time.monotonic() < deadline:
            time.sleep(0.02)
        assert running.status == "running" and running.step_count > step


# ---------------------------------------------------------------------------------------------------- app handlers
class _Req:
    def __init__(self, sid):
        self.session_hash = sid


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app's Blocks (not launched): handlers are called directly, the way Gradio calls them."""
    pytest.importorskip("gradio")
    from dqngan.ui import build_demo

    tmp = tmp_path_factory.mktemp("app")
    demo = build_demo(checkpoint=None, preset="tiny", device="cpu", max_running=1, save_root=tmp / "saved")
    fns = {f.api_name: f.fn for f in demo.fns.values() if getattr(f, "api_name", None)}
    yield demo, fns
    demo.ctx.registry.close()


@pytest.fixture(scope="module")
def app_run(app):
    """A session whose run trains in the background during the app cases."""
    from dqngan.ui import knobs

    demo, fns = app
    vals = knobs.values_of(knobs.preset_config("tiny"))
    base = knobs.preset_config("tiny").to_dict()
    status = fns["train"](_Req("trainer-tab"), base, *vals)
    assert "running" in status
    run = demo.ctx.registry.session("trainer-tab").run
    return run, base, vals


def _blank(shape=(280, 280)):
    return {"composite": np.full(shape, 255, dtype=np.uint8), "layers": [], "background": None}


def _recipe(base: dict) -> dict:
    """What Reset builds from (the Train tab's recipe state): the preset's config, knobs filled from it."""
    from dqngan.ui.knobs import recipe_for

    return recipe_for(base, base, "tiny")


def _knob_vals(**kv):
    from dqngan.ui import knobs

    vals = list(knobs.values_of(knobs.preset_config("tiny")))
    for k, v in kv.items():
        vals[knobs.KEYS.index(k)] = v
    return vals


def _drain(out):
    """Handlers may be generators (draw): run them to the end and return the last output."""
    import types

    if isinstance(out, types.GeneratorType):
        last = None
        for item in out:
            last = item
        return last
    return out


# (name, api_name, args builder (base, req) -> args, words in the message)
APP_CASES = [
    ("draw: blank canvas", "draw_refine", lambda b, r: (_blank(), "none", 20, r), "canvas is empty"),
    ("draw: no value at all", "draw_refine", lambda b, r: (None, "none", 20, r), "canvas is empty"),
    ("draw: empty (0x0) upload", "draw_refine", lambda b, r: ({"composite": np.zeros((0, 0), np.uint8)}, "none", 20,
                                                              r), "canvas is empty"),
    ("draw: huge blank upload (4000x4000)", "draw_refine", lambda b, r: (_blank((4000, 4000)), "none", 20, r),
     "canvas is empty"),
    ("draw: odd upload (a 1-D array)", "draw_refine", lambda b, r: ({"composite": np.arange(10, dtype=np.uint8)},
                                                                    "none", 20, r), "not an image"),
    ("draw: odd upload (4-D array)", "draw_refine", lambda b, r: ({"composite": np.zeros((2, 2, 2, 2), np.uint8)},
                                                                  "none", 20, r), "not an image"),
    ("draw: 0 projection steps", "draw_refine", lambda b, r: (_ink(), "none", 0, r), "between 1 and 1000"),
    ("draw: 10**6 projection steps", "draw_refine", lambda b, r: (_ink(), "none", 10**6, r), "between 1 and 1000"),
    ("draw: steps as text", "draw_refine", lambda b, r: (_ink(), "none", "many", r), "many"),
    ("step: n = 0", "step", lambda b, r: (r, 0, b, *_knob_vals()), "1 to 10000"),
    ("step: n = None", "step", lambda b, r: (r, None, b, *_knob_vals()), "1 to 10000"),
    ("step: n = 10**9", "step", lambda b, r: (r, 10**9, b, *_knob_vals()), "1 to 10000"),
    ("train: lr_g as text", "train", lambda b, r: (r, b, *_knob_vals(lr_g="fast")), "lr_g"),
    ("train: lr_g negative", "train", lambda b, r: (r, b, *_knob_vals(lr_g=-1.0)), "lr_g must be >= 0"),
    ("train: eps_end > eps_start", "train", lambda b, r: (r, b, *_knob_vals(eps_start=0.1, eps_end=0.9)),
     "eps_end must be <= eps_start"),
    ("reset: n_dirs = 0", "reset", lambda b, r: (r, _recipe(b), *_knob_vals(n_dirs=0)), "n_dirs"),
    ("pause: nothing of mine", "pause", lambda b, r: (r,), "nothing of yours"),
    ("save: name escapes the folder", "save_checkpoint", lambda b, r: ("../escape", r), "checkpoint name"),
    ("save: empty name", "save_checkpoint", lambda b, r: ("", r), "checkpoint name"),
    ("load: nothing picked", "load_checkpoint", lambda b, r: ("", r), "pick a checkpoint"),
    ("load: arbitrary path", "load_checkpoint", lambda b, r: ("/etc/passwd", r), "not one of the listed"),
    ("hub push: bad repo id", "hub_push", lambda b, r: ("not a repo id", "", False, "", r), "invalid repo id"),
    ("hub pull: bad repo id", "hub_pull", lambda b, r: ("a/b/c", "", "", r), "invalid repo id"),
    ("preset: unknown", "load_preset", lambda b, r: ("huge", r), "unknown preset"),
    ("restore config: not JSON", "restore_config", lambda b, r: ("{not json",), "JSON"),
    ("restore config: out of range", "restore_config", lambda b, r: ('{"width": -1}',), "width"),
]


def _ink():
    v = _blank()
    v["composite"][60:220, 130:150] = 0
    return v


@pytest.mark.parametrize("name,api,args,words", APP_CASES, ids=[c[0] for c in APP_CASES])
def test_app_handler_bad_input(name, api, args, words, app, app_run, monkeypatch):
    from dqngan.ui import feedback, train_tab

    demo, fns = app
    run, base, _ = app_run
    if api not in fns:
        pytest.skip(f"the app has no /{api}")
    if api.startswith("hub_"):
        pytest.importorskip("dqngan.hub")
    warned = []
    monkeypatch.setattr(feedback, "warn", warned.append)
    monkeypatch.setattr(train_tab, "warn", warned.append)
    cfg, step = run.runner.cfg.to_dict(), run.runner.step_count
    sid = f"bad-{abs(hash(name))}"
    crashed, out = False, None
    try:
        out = _drain(fns[api](*args(base, _Req(sid))))
    except Exception as e:
        crashed, warned = True, [f"{type(e).__name__}: {e}"]
    msg = warned[-1] if warned else ""
    clear = not crashed and len(warned) == 1 and _one_line(msg) and words in msg
    _record("app", name, clear, crashed, msg)
    assert not crashed, msg
    assert len(warned) == 1 and _one_line(msg) and words in msg, (warned, out)
    # the training run of another session keeps going with its settings
    deadline = time.monotonic() + 30
    while run.runner.step_count <= step and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.running and run.runner.error is None and run.runner.step_count > step
    assert run.runner.cfg.to_dict() == cfg
    assert demo.ctx.registry.session("trainer-tab").run is run


def test_app_poll_still_serves_after_bad_inputs(app, app_run):
    demo, fns = app
    run, _, _ = app_run
    out = fns["poll"](_Req("trainer-tab"))
    assert "running" in out[0] and "your run" in out[0]
    assert all(math.isfinite(float(v)) for v in [run.runner.step_count])
