"""Secrets (issue 6, item 5), beyond tests/test_hub.py::test_token_never_leaks (library calls): the same grep for the
two other ways a token comes in, with a token of the real shape (hf_ + 34 characters):

* typed into the app's Models tab: push / pull / check, and failing ones (403, 401, bad repo id) — every returned
  message, toast, status line, log record (DEBUG, huggingface_hub included), stdout/stderr, the session state, the
  environment, and every file in the app's save folder, the pulled checkpoint, the HF cache and the pushed repo;
* HF_TOKEN for the CLI: push / pull / whoami and a refused push — stdout, stderr and every file written.
"""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

fake_hub = pytest.importorskip("fake_hub")

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_" + "Zq7" * 11 + "x"  # the shape of a real token: hf_ + 34 letters and digits
WRONG = "hf_" + "Wr0ng" * 6 + "abcd"  # real-shaped, unknown to the Hub: 401
SECRETS = (TOKEN, WRONG)


class _Req:
    def __init__(self, sid):
        self.session_hash = sid


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The fake Hub with TOKEN as alice's token; huggingface_hub pointed at it (as in test_hub.py)."""
    monkeypatch.setitem(fake_hub.USERS, TOKEN, "alice")
    hub = fake_hub.FakeHub().start()
    ep, home = hub.url, tmp_path / "hf_home"
    fake_hub.point_client_at(monkeypatch, ep, home)
    for k, v in {"HF_ENDPOINT": ep, "HF_HOME": str(home), "HF_HUB_OFFLINE": "0"}.items():
        monkeypatch.setenv(k, v)
    for k in ("HF_TOKEN", "HF_HUB_CACHE", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    hub.home = home
    yield hub
    hub.stop()
    import huggingface_hub

    huggingface_hub.close_session()


@pytest.fixture
def debug_logs():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler, root, hf = Keep(logging.DEBUG), logging.getLogger(), logging.getLogger("huggingface_hub")
    levels = (root.level, hf.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    hf.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(levels[0])
    hf.setLevel(levels[1])


def _files(*dirs):
    return [p for d in dirs if Path(d).exists() for p in Path(d).rglob("*") if p.is_file()]


def _assert_clean(texts, files, hub):
    for t in texts:
        assert not any(s in str(t) for s in SECRETS), t
    for p in files:
        data = p.read_bytes()
        assert not any(s.encode() in data for s in SECRETS), p
    for repo in hub.repos.values():
        for commit in repo.commits.values():
            for name, content in commit.items():
                assert not any(s.encode() in content for s in SECRETS), name


def test_token_typed_into_the_app_never_leaks(hub, tmp_path, debug_logs, capfd, monkeypatch):
    pytest.importorskip("gradio")
    from dqngan.ui import build_demo, feedback, knobs

    toasts = []
    monkeypatch.setattr(feedback, "warn", toasts.append)
    demo = build_demo(checkpoint=None, preset="tiny", device="cpu", max_running=1, save_root=tmp_path / "saved")
    fns = {f.api_name: f.fn for f in demo.fns.values() if getattr(f, "api_name", None)}
    req, cfg = _Req("s"), knobs.preset_config("tiny")
    try:
        fns["step"](req, 2, cfg.to_dict(), *knobs.values_of(cfg))
        run = demo.ctx.registry.session("s").run
        assert run.runner.wait(60)
        out = [fns["hub_whoami"](TOKEN), fns["hub_push"]("alice/app-secret", "", True, TOKEN, req)]
        assert "alice" in out[0] and "pushed" in out[1], out
        pulled = fns["hub_pull"]("alice/app-secret", "", TOKEN, req)
        assert "loaded" in pulled[0], pulled
        out += [pulled[0], fns["save_checkpoint"]("after-pull", req)[0]]
        out += [fns["hub_push"]("bob/not-yours", "", False, TOKEN, req),  # 403
                fns["hub_push"]("alice/app-secret", "", False, WRONG, req),  # 401
                fns["hub_pull"]("alice/nothing-here", "", TOKEN, req)[0],  # 404
                fns["hub_pull"]("not a repo", "", TOKEN, req)[0],
                fns["hub_whoami"](WRONG)]
        assert sum("⚠️" in str(o) for o in out) == 5, out
        out.append(fns["poll"](req)[0])
        sess = demo.ctx.registry.session("s")
        state = [repr(vars(sess)), sess.run.label, str(sess.run.source), repr(sess.run.snap.get("config"))]
        env = [f"{k}={v}" for k, v in os.environ.items()]
        captured = capfd.readouterr()
        assert debug_logs and toasts  # the logs and the warnings really were captured
        files = _files(tmp_path / "saved", hub.home, Path(sess.run.source))
        assert any(p.name == "config.json" for p in files)  # the saved checkpoint really is searched
        # A pull with a typed token downloads into a temporary cache of its own (deleted once loaded), so nothing of
        # the (possibly private) repo is left in the shared HF cache for another visitor's offline pull.
        assert not any("blobs" in p.parts for p in files)
        _assert_clean([*out, *toasts, *debug_logs, *state, *env, captured.out, captured.err], files, hub)
    finally:
        demo.ctx.registry.close()


def test_hf_token_for_the_cli_never_leaks(hub, tmp_path):
    from dqngan.checkpoint import save_checkpoint
    from dqngan.config import make_config
    from dqngan.trainer import Trainer

    ck = save_checkpoint(Trainer(make_config("tiny"), "cpu"), tmp_path / "ck")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_TOKEN=TOKEN, HF_HUB_DISABLE_TELEMETRY="1")
    script = ("import sys\nfrom dqngan.cli import main\n"
              "for argv in [['push', '--checkpoint', sys.argv[1], '--repo-id', 'alice/cli-secret'],\n"
              "             ['pull', '--repo-id', 'alice/cli-secret', '--out', sys.argv[2]], ['whoami'],\n"
              "             ['push', '--checkpoint', sys.argv[1], '--repo-id', 'bob/not-yours'],\n"
              "             ['pull', '--repo-id', 'alice/none', '--out', sys.argv[2] + '-x']]:\n"
              "    print('rc', main(argv), flush=True)\n")
    p = subprocess.run([sys.executable, "-c", script, str(ck), str(tmp_path / "pulled")], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=300)
    assert p.stdout.count("rc 0") == 3 and p.stdout.count("rc 1") == 2, (p.stdout, p.stderr[-2000:])
    assert "403" in p.stderr and "alice" in p.stdout
    _assert_clean([p.stdout, p.stderr], _files(tmp_path, hub.home), hub)
