"""Sessions (issue #6, item 4), on the launched app: every gradio_client `Client` is its own session, and a real
browser tab (headless Debian chromium, Playwright) is closed for the unload path.

- the cap on concurrent trainers holds when 5 sessions press Train at the same moment (cap 1 and 2, several rounds):
  exactly `cap` runs train, the others get a readable "busy" status, and no extra trainer thread exists anywhere;
- one session's Pause / Step / Reset / live knobs act on its own run only; Watch is read-only (Pause, Save and Push
  are refused) and the watcher sees its own messages, never the owner's;
- a Hub token typed by one session shows up in no output of another session (every endpoint it can call), in its
  Gradio session state, or anywhere in the app's object graph (registry, sessions, runs, trainers); and the other
  session cannot act with it (its empty-token calls are anonymous);
- closing a tab stops its trainer within 30 s with Gradio's default 15 s heartbeat (measured), also when the tab
  closes while its Train click is still building the model.

Measured numbers are printed (run with -s to see them).
"""

import collections
import concurrent.futures
import functools
import os
import threading
import time
import types

import numpy as np
import pytest

# A gradio_client Client drops its heartbeat connection only when the next heartbeat arrives (15 s by default), so
# the API tests shorten it for quick unloads; the browser tests put Gradio's default back (a closed tab disconnects).
os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", "0.5")

gr = pytest.importorskip("gradio")
import torch  # noqa: E402
from gradio_client import Client  # noqa: E402
from helpers import launched_app, wait_for  # noqa: E402

from dqngan.ui import knobs  # noqa: E402
from dqngan.ui.session import Busy, Registry, Run, Session  # noqa: E402

N_CLICKS = 5  # sessions pressing Train at the same moment
ROUNDS = 3  # per cap
TOKEN = "hf_good"  # the fake Hub's valid token (user alice)
BAD_TOKEN = "hf_" + "Zq8" * 12  # shaped like a real token; the fake Hub answers 401
STOP_LIMIT = 30.0  # seconds from closing a tab to its trainer thread having ended


# ---------------------------------------------------------------------------------------------------- helpers
def trainer_threads():
    """Every live training thread in the process, whether or not the registry still knows its run."""
    return [t for t in threading.enumerate() if t.name == "dqngan-trainer" and t.is_alive()]


def own_run(demo, client):
    sess = demo.ctx.registry._sessions.get(client.session_hash)
    return sess.run if sess else None


def poll(client):
    return client.predict(api_name="/poll")


def new_clients(url, n):
    """n new sessions, connected side by side (each Client fetches the app's config: ~0.2 s, mostly waiting)."""
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: Client(url, verbose=False, download_files=False), range(n)))


def close_all(clients):
    """Close the clients side by side: each close waits for its heartbeat thread's next beat (up to 0.5 s here)."""
    if clients:
        with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
            list(pool.map(lambda c: c.close(), clients))


def click_together(clients, api_name):
    """Every client calls `api_name` at the same moment (threads released by one barrier): (outputs, errors)."""
    barrier = threading.Barrier(len(clients))
    outs, errors = [None] * len(clients), []

    def click(i):
        barrier.wait()
        try:
            outs[i] = clients[i].predict(api_name=api_name)
        except Exception as e:  # noqa: BLE001 - reported to the test
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=click, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outs, errors


def everything(c, vals):
    """What a visitor can call (every public endpoint but Train / Step / Reset / Load), outputs in order: the poll
    first, the three Hub calls (all with an empty token field) last."""
    sliders = [0.0] * 16
    return [poll(c), c.predict(0.6, "whole run", api_name="/charts"), c.predict(0.6, "whole run", api_name="/smooth"),
            c.predict(True, api_name="/grid"), c.predict("free", api_name="/locks"), c.predict(1, api_name="/scrub"),
            c.predict(api_name="/gif"), c.predict(3, "none", api_name="/explore_seed"),
            c.predict(3, "none", api_name="/explore_reset"), c.predict("none", api_name="/explore_random"),
            c.predict(3, "none", *sliders, api_name="/explore_render"),
            c.predict(3, "none", *sliders, api_name="/agent_step"),
            c.predict(3, "none", *sliders, api_name="/agent_rollout"),
            c.predict(0, 1, 3, "none", api_name="/interpolate"),
            c.predict("d1", "d2", 2, 9, False, 3, "none", *sliders, api_name="/latent_map"),
            c.predict(api_name="/list_checkpoints"), c.predict("b-saved", api_name="/save_checkpoint"),
            c.predict(*vals, api_name="/config_json"), c.predict("{}", api_name="/restore_config"),
            c.predict("tiny", api_name="/load_preset"),
            c.predict("2. What the Q-values mean", api_name="/lesson"),
            c.predict(api_name="/pause"), c.predict("", api_name="/hub_whoami"),
            c.predict("alice/sessions-private", "", "", api_name="/hub_pull"),
            c.predict("alice/sessions-b", "", False, "", api_name="/hub_push")]


def find_strings(root, needles, limit=500_000):
    """Paths in `root`'s object graph (attributes, dict keys and values, sequences, bound methods, partials) to every
    str/bytes that contains one of `needles`. Tensors and arrays are skipped (numbers cannot hold a token)."""
    hits, seen, stack = [], set(), [(root, "root")]
    while stack:
        obj, path = stack.pop()
        if isinstance(obj, (str, bytes, bytearray)):
            text = obj if isinstance(obj, str) else bytes(obj).decode("latin-1")
            hits += [f"{path} holds {n!r}" for n in needles if n in text]
            continue
        if obj is None or isinstance(obj, (int, float, complex, torch.Tensor, np.ndarray, np.generic, type,
                                           types.ModuleType, types.FunctionType, types.BuiltinFunctionType)):
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        assert len(seen) < limit, "object graph too large to search"
        if isinstance(obj, dict):
            for k, v in obj.items():
                stack += [(k, f"{path}.keys()"), (v, f"{path}[{k!r}]")]
        elif isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
            stack += [(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        elif isinstance(obj, types.MethodType):
            stack.append((obj.__self__, f"{path}.__self__"))
        elif isinstance(obj, functools.partial):
            stack += [(obj.args, f"{path}.args"), (obj.keywords, f"{path}.keywords")]
        else:
            attrs = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
            for cls in type(obj).__mro__:
                for name in getattr(cls, "__slots__", ()):
                    if isinstance(name, str) and hasattr(obj, name):
                        attrs.setdefault(name, getattr(obj, name))
            stack += [(v, f"{path}.{k}") for k, v in attrs.items()]
    return hits


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on a free port: a fresh tiny model (no shipped checkpoint), default model slots (4), one trainer."""
    with launched_app(tmp_path_factory.mktemp("sessions-app")) as (demo, url):
        yield demo, url


@pytest.fixture
def connect(app):
    """New sessions (one Client each); closed after the test, which must stop every one of their trainers."""
    demo, url = app
    made = []

    def make():
        c = Client(url, verbose=False, download_files=False)
        made.append(c)
        return c

    wait_for(lambda: not trainer_threads(), what="earlier tests' trainers to stop")
    yield make
    close_all(made)
    reg = demo.ctx.registry
    wait_for(lambda: not any(c.session_hash in reg._sessions for c in made), what="unload for the closed clients")
    wait_for(lambda: not trainer_threads(), what="the closed sessions' trainers to stop")


@pytest.fixture
def set_cap(app):
    reg = app[0].ctx.registry
    old = reg.max_running

    def set_(n):
        reg.max_running = n

    yield set_
    reg.max_running = old


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """The fake Hub from tests/fake_hub.py with huggingface_hub pointed at it; no HF_TOKEN, no stored login."""
    fake = pytest.importorskip("fake_hub")
    hub = fake.FakeHub().start()
    fake.point_client_at(monkeypatch, hub.url, tmp_path / "hf_home")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("SYSTEM", raising=False)
    yield hub
    hub.stop()
    import huggingface_hub

    huggingface_hub.close_session()


# ---------------------------------------------------------------------------------------------------- the cap
@pytest.mark.parametrize("cap", [1, 2])
def test_cap_holds_under_simultaneous_train_clicks(app, set_cap, cap):
    demo, url = app
    reg = demo.ctx.registry
    set_cap(cap)
    wait_for(lambda: not trainer_threads(), what="earlier tests' trainers to stop")
    report = []
    for rnd in range(ROUNDS):
        clients = new_clients(url, N_CLICKS)
        try:
            t0 = time.monotonic()
            outs, errors = click_together(clients, "/train")
            took = time.monotonic() - t0
            assert not errors, errors
            started = [i for i, o in enumerate(outs) if "running" in o and "your run" in o]
            refused = [i for i in range(N_CLICKS) if i not in started]
            assert len(started) == cap, (rnd, outs)
            for i in refused:  # a readable status line saying why, and the refused session keeps no run
                assert "busy" in outs[i] and "shared model" in outs[i], outs[i]
                assert own_run(demo, clients[i]) is None
            runs = [own_run(demo, clients[i]) for i in started]
            assert all(r is not None and r.running for r in runs) and len({id(r) for r in runs}) == cap
            # the started runs really train ...
            base = [r.runner.step_count for r in runs]
            wait_for(lambda runs=runs, base=base: all(r.runner.step_count > s for r, s in zip(runs, base)),
                     what="the started runs")
            # ... and a moment later still nothing else does: no late start, no orphan thread outside the registry
            time.sleep(0.5)
            n_threads, n_running = len(trainer_threads()), reg.running_count()
            assert n_threads == cap and n_running == cap, (n_threads, n_running)
            assert all(own_run(demo, clients[i]) is None for i in refused)
            report.append(f"round {rnd + 1}: {len(started)} trained / {len(refused)} busy, {n_threads} trainer "
                          f"thread(s), clicks answered in {took:.1f} s")
        finally:
            close_all(clients)
        t_close = time.monotonic()
        wait_for(lambda: not trainer_threads(), what="the closed sessions' trainers to stop")
        report[-1] += f"; all stopped {time.monotonic() - t_close:.1f} s after the clients closed"
    print(f"\n[sessions] cap={cap}, {N_CLICKS} simultaneous Train clicks x {ROUNDS} rounds:\n  " + "\n  ".join(report))


@pytest.mark.parametrize("how", ["evicted", "replaced", "released", "dropped"])
def test_a_run_taken_away_before_its_click_starts_it_never_trains(mnist, tiny_cfg, how):
    """The window between a click making its run and starting it: if the run was evicted (another session needed
    the room), replaced, given back or its session dropped meanwhile, starting it would train outside the cap and
    nothing would ever stop it. Found by this suite; Registry.train now refuses."""
    from dqngan.runner import Runner
    from dqngan.trainer import Trainer

    def make():
        return Run(Runner(Trainer(tiny_cfg, "cpu", data=mnist)), label="test")

    reg = Registry(make, max_running=1, max_runs=1)
    try:
        a = reg.own("a", make)  # session a's click made its run ...
        if how == "evicted":
            reg.own("b", make)  # ... b needs the only model slot: a's idle run is evicted
        elif how == "replaced":
            reg.own("a", make, replace=True)
        elif how == "released":
            reg.release("a", a)
        else:
            reg.drop("a")
        wait_for(lambda: a.runner.status == "stopped", what="the taken run to be stopped")
        with pytest.raises(Busy, match="busy"):
            reg.train(a)  # ... and only now does a's click try to start it
        time.sleep(0.3)
        assert a.runner.status == "stopped" and a.runner.step_count == 0 and a not in reg.runs()
        if how == "evicted":  # the slot is still free for a run the registry owns
            b = reg.session("b").run
            reg.train(b)
            assert b.running and reg.running_count() == 1
    finally:
        reg.close()
    wait_for(lambda: not trainer_threads(), what="every trainer to stop")


def test_simultaneous_new_runs_count_the_ones_still_being_built(mnist, tiny_cfg):
    """Six sessions ask for a run of their own at the same instant (a class pressing Reset) with two model slots:
    only two models are built; the other four are told the slots are being loaded, at once, instead of each
    building a model (with the process runner a 400 MB process each: 30 Resets once held 30 of them)."""
    from dqngan.runner import Runner
    from dqngan.trainer import Trainer

    release, entered = threading.Event(), threading.Semaphore(0)

    def make():  # a real model, built only once the test has seen every request arrive
        entered.release()
        assert release.wait(60)
        return Run(Runner(Trainer(tiny_cfg, "cpu", data=mnist)), label="test")

    reg = Registry(make, max_running=1, max_runs=2)
    gate = threading.Barrier(6)
    outcome: dict[str, object] = {}

    def ask(sid: str) -> None:
        gate.wait()
        try:
            outcome[sid] = reg.own(sid, make)
        except Busy as exc:
            outcome[sid] = exc

    threads = [threading.Thread(target=ask, args=(f"s{i}",)) for i in range(6)]
    try:
        for t in threads:
            t.start()
        assert entered.acquire(timeout=30) and entered.acquire(timeout=30)  # two builds under way ...
        wait_for(lambda: len(outcome) == 4, what="the other four answers")  # ... and four answered meanwhile
        refused = [str(v) for v in outcome.values()]
        assert all("being loaded for other visitors" in m for m in refused), refused
        release.set()
        for t in threads:
            t.join(60)
        built = [v for v in outcome.values() if isinstance(v, Run)]
        assert len(built) == 2 and len(reg.runs()) == 2 and not entered.acquire(timeout=0)
    finally:
        release.set()
        reg.close()


# ---------------------------------------------------------------------------------------------------- isolation
def test_one_session_cannot_pause_step_reset_or_save_another(app, connect, set_cap):
    demo, _ = app
    reg = demo.ctx.registry
    set_cap(2)
    a, b, c = connect(), connect(), connect()
    base_steps = reg.base.runner.step_count
    # a session without a run looks at the shared model, read-only: Pause and live knobs don't touch it
    assert "nothing of yours" in c.predict(api_name="/pause") and "shared model" in poll(c)[0]
    c.predict(*[0.0042 if k == "lr_g" else knobs.value_of(k, reg.base.runner.cfg.to_dict()) for k in knobs.LIVE],
              api_name="/set_lr_g")
    assert reg.base.runner.cfg.lr_g != 0.0042 and own_run(demo, c) is None
    assert "running" in a.predict(api_name="/train")
    assert "running" in b.predict(api_name="/train")
    run_a, run_b = own_run(demo, a), own_run(demo, b)
    assert run_a is not run_b and run_a.running and run_b.running
    seen_by_b = []

    def b_keeps_training(after):
        s0 = run_b.runner.step_count
        wait_for(lambda: run_b.runner.step_count >= s0 + 2, timeout=20, what=f"B to keep training after A's {after}")
        assert own_run(demo, b) is run_b and run_b.running
        out = poll(b)
        seen_by_b.append(out)
        assert "running" in out[0] and "your run" in out[0]

    assert "paused" in a.predict(api_name="/pause")
    assert run_a.runner.status == "paused"
    b_keeps_training("Pause")
    s_a = run_a.runner.step_count
    assert "stepping 3" in a.predict(3, api_name="/step")
    wait_for(lambda: run_a.runner.status == "paused" and run_a.runner.step_count == s_a + 3, what="A's 3 steps")
    b_keeps_training("Step")
    # B's own live knob: its notice is B's alone
    live = {k: knobs.value_of(k, run_b.runner.cfg.to_dict()) for k in knobs.LIVE}
    live["lr_g"] = 0.00123
    b.predict(*live.values(), api_name="/set_lr_g")
    wait_for(lambda: run_b.runner.cfg.lr_g == 0.00123, what="B's live lr_g")
    assert "lr_g=0.00123" in poll(b)[0]
    assert "reset" in a.predict(api_name="/reset")[0]
    new_a = own_run(demo, a)
    assert new_a is not run_a and new_a is not run_b and own_run(demo, b) is run_b
    b_keeps_training("Reset")

    # Watch: A follows B's run, read-only
    assert "watching" in a.predict(api_name="/watch")
    assert reg.view(a.session_hash) is run_b and own_run(demo, a) is new_a
    status = poll(a)[0]
    assert "watching another visitor's run (read-only)" in status and "lr_g=0.00123" not in status
    assert "cannot pause" in a.predict(api_name="/pause") and run_b.running
    msg = a.predict("taken", api_name="/save_checkpoint")[0]
    assert "⚠️" in msg and "watching" in msg and not (demo.ctx.save_root / "taken").exists()
    assert "watching another visitor's run" in a.predict("alice/x", "", False, "", api_name="/hub_push")
    a_live = dict(live, lr_g=0.0042)
    a.predict(*a_live.values(), api_name="/set_lr_g")  # A's live knob goes to A's own run, not the watched one
    wait_for(lambda: new_a.runner.cfg.lr_g == 0.0042, what="A's live lr_g")
    assert run_b.runner.cfg.lr_g == 0.00123
    b_keeps_training("Pause, Save, Push and live knob while watching")
    # Step while watching steps A's own run (and stops watching)
    s_b = run_b.runner.step_count
    assert "stepping 2" in a.predict(2, api_name="/step")
    wait_for(lambda: new_a.runner.status == "paused" and new_a.runner.step_count == 2, what="A's own 2 steps")
    assert reg.view(a.session_hash) is new_a and run_b.runner.step_count > s_b
    b_keeps_training("Step while watching")
    # positive control: B's own Pause does pause B
    assert "paused" in b.predict(api_name="/pause") and run_b.runner.status == "paused"
    assert reg.base.runner.step_count == base_steps and reg.base.runner.status == "idle"
    # B never sees A's session hash (the only key to A's session) nor A's messages
    text = repr(seen_by_b) + repr(poll(b))
    assert a.session_hash not in text and "lr_g=0.0042" not in text
    print(f"\n[sessions] isolation: B trained {run_b.runner.step_count} steps through A's Pause/Step/Reset/Watch "
          f"actions; A's runs: {run_a.runner.step_count} + {new_a.runner.step_count} steps")


def test_finder_sees_a_planted_token():
    """The search used below can fail: a token anywhere in a session object graph is found."""
    s = Session()
    s.notice = f"logged in with {TOKEN}"
    reg = Registry(lambda: None, max_running=1)
    reg._sessions["x"] = s
    assert find_strings(reg, [TOKEN]) and not find_strings(reg, [BAD_TOKEN])
    assert find_strings({"k": [(1, {"deep": BAD_TOKEN.encode()})]}, [BAD_TOKEN])


def test_hub_token_of_one_session_reaches_no_other(app, connect, fake_hub, set_cap, monkeypatch):
    from dqngan.ui import explore_tab

    demo, _ = app
    reg = demo.ctx.registry
    set_cap(2)
    # B's two agent rollouts need not animate (0.35 s between frames: ~5 s of this test); each still makes every frame
    monkeypatch.setattr(explore_tab, "ROLLOUT_DELAY", 0.0)
    a, b = connect(), connect()
    # A uses the Hub with tokens typed into the password field (good and bad; public and private repos)
    assert "alice" in a.predict(TOKEN, api_name="/hub_whoami")
    assert "⚠️" in a.predict(BAD_TOKEN, api_name="/hub_whoami")
    a.predict(2, api_name="/step")
    wait_for(lambda: own_run(demo, a) and own_run(demo, a).runner.status == "paused", what="A's steps")
    assert "pushed" in a.predict("alice/sessions-run", "", False, TOKEN, api_name="/hub_push")
    assert "pushed" in a.predict("alice/sessions-private", "", True, TOKEN, api_name="/hub_push")
    assert "⚠️" in a.predict("alice/sessions-run", "", False, BAD_TOKEN, api_name="/hub_push")
    assert "loaded" in a.predict("alice/sessions-private", "", TOKEN, api_name="/hub_pull")[0]
    assert "⚠️" in a.predict("alice/sessions-private", "", BAD_TOKEN, api_name="/hub_pull")[0]
    assert "running" in a.predict(api_name="/train")  # A's pulled run trains, so B can watch it
    run_a = own_run(demo, a)
    wait_for(lambda: run_a.snap.get("step", 0) > 2 and run_a.snap.get("grids"), what="A's run to train")

    # B calls every endpoint a visitor has (watching A's run, then on its own), Hub ones with an empty token
    seen = [b.predict(api_name="/watch")]
    assert "watching" in seen[0]
    seen += everything(b, knobs.values_of(run_a.runner.cfg))
    assert "watching another visitor's run" in seen[1][0]
    a.predict(api_name="/pause")  # (2 cores: the rest runs faster without A's trainer)
    seen.append(b.predict(2, api_name="/step"))
    wait_for(lambda: own_run(demo, b) and own_run(demo, b).runner.status == "paused", what="B's steps")
    seen += everything(b, knobs.values_of(run_a.runner.cfg))
    assert "your run" in seen[len(seen) // 2 + 1][0]
    # B cannot act as A: its empty-token Hub calls are anonymous (no token lookup finds A's)
    whoami, pull, push = seen[-3:]
    assert "⚠️" in whoami and "alice" not in whoami
    assert "⚠️" in pull[0] and "sessions-private" not in own_run(demo, b).label
    assert "⚠️" in push and not any(r.repo_id == "alice/sessions-b" for r in fake_hub.repos.values())
    text = repr(seen)
    for needle in (TOKEN, BAD_TOKEN, a.session_hash):
        assert needle not in text, f"B's outputs contain {needle!r}"
    # B's Gradio session state, and the whole app context: registry, sessions, runs, trainers, caches
    state = demo.server_app.state_holder.session_data[b.session_hash]
    assert not find_strings([state.state_data, state.config_values], [TOKEN, BAD_TOKEN]), "B's Gradio state"
    hits = find_strings(demo.ctx, [TOKEN, BAD_TOKEN])
    assert not hits, hits[:5]
    a_state = demo.server_app.state_holder.session_data[a.session_hash]
    a_state = [a_state.state_data, a_state.config_values]
    print(f"\n[sessions] token search: the outputs of {len(seen)} endpoint calls by B, B's Gradio "
          f"state, the app context ({reg.running_count()} running run(s), {len(reg._sessions)} sessions): no token; "
          f"A's own Gradio state holds it: {bool(find_strings(a_state, [TOKEN, BAD_TOKEN]))}")


# ---------------------------------------------------------------------------------------------------- tab close
def test_closed_sessions_leave_no_gradio_state(app):
    """Gradio keeps a session's state (config copy + gr.State values, 0.5-1.5 MB) long after its tab closed; the
    app's unload drops it, so visitors who come and go do not grow the server (bench/load_test.py measured +113 MB
    over 50 such visitors before)."""
    demo, url = app
    holder, reg = demo.server_app.state_holder, demo.ctx.registry
    clients = new_clients(url, 4)
    for c in clients:
        poll(c)
        c.predict("tiny", api_name="/load_preset")  # fills a gr.State (the session's config)
    sids = [c.session_hash for c in clients]
    assert all(s in holder.session_data and s in reg._sessions for s in sids)
    t0 = time.monotonic()
    close_all(clients)
    wait_for(lambda: not any(s in holder.session_data or s in reg._sessions for s in sids), timeout=30,
             what="unload to drop the closed sessions' Gradio state")
    print(f"\n[sessions] 4 closed clients: Gradio state and app sessions gone {time.monotonic() - t0:.2f} s later")


def open_tab(app, browser, monkeypatch):
    """A fresh tab on the app with Gradio's production heartbeat (15 s; the tests elsewhere shorten it)."""
    demo, url = app
    monkeypatch.delenv("GRADIO_HEARTBEAT_INTERVAL", raising=False)
    monkeypatch.delenv("GRADIO_IS_E2E_TEST", raising=False)
    from gradio.utils import get_heartbeat_rate

    assert get_heartbeat_rate() == 15
    wait_for(lambda: not trainer_threads(), what="earlier tests' trainers to stop")
    before = set(demo.ctx.registry._sessions)
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_function("() => (document.querySelector('#status') || {innerText: ''}).innerText"
                           ".includes('shared model')", polling=100)
    new = set(demo.ctx.registry._sessions) - before
    assert len(new) == 1, new
    return page, new.pop()


def test_closing_the_tab_stops_its_trainer(app, browser, monkeypatch, set_cap):
    demo, _ = app
    reg = demo.ctx.registry
    set_cap(1)
    page, sid = open_tab(app, browser, monkeypatch)
    page.click("#train-btn")
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('running')", polling=100)
    run = reg._sessions[sid].run
    wait_for(lambda: run.runner.step_count >= 3, what="the tab's run to train")
    thread = run.runner._thread
    assert thread.is_alive() and trainer_threads() == [thread]
    assert sid in demo.server_app.state_holder.session_data
    t0 = time.monotonic()
    page.close()
    wait_for(lambda: sid not in reg._sessions, timeout=STOP_LIMIT, every=0.02, what="unload")
    t_unload = time.monotonic() - t0
    wait_for(lambda: not thread.is_alive(), timeout=STOP_LIMIT - t_unload, every=0.02, what="the trainer to stop")
    t_stop = time.monotonic() - t0
    assert run.runner.status == "stopped" and not trainer_threads()
    wait_for(lambda: sid not in demo.server_app.state_holder.session_data, timeout=5, what="the tab's Gradio state")
    steps = run.runner.step_count
    time.sleep(0.5)
    assert run.runner.step_count == steps
    print(f"\n[sessions] tab closed while training ({steps} steps): unload after {t_unload:.2f} s, trainer thread "
          f"ended {t_stop:.2f} s after the close (limit {STOP_LIMIT:.0f} s; heartbeat 15 s)")
    assert t_stop <= STOP_LIMIT


def test_closing_the_tab_during_its_train_click_starts_nothing(app, browser, monkeypatch, set_cap):
    """The tab closes while its Train click is still building the model (slow here on purpose, like a big
    checkpoint): the unload runs first, so the click must not bring the session back and start a trainer nobody
    can stop (it did before Registry.own checked that its session still exists)."""
    demo, _ = app
    reg = demo.ctx.registry
    set_cap(1)
    entered, built = threading.Event(), threading.Event()
    fresh = demo.ctx.fresh

    def slow_fresh(cfg):
        entered.set()
        time.sleep(2.0)
        try:
            return fresh(cfg)
        finally:
            built.set()

    monkeypatch.setattr(demo.ctx, "fresh", slow_fresh)
    page, sid = open_tab(app, browser, monkeypatch)
    page.click("#train-btn")
    assert entered.wait(30), "the Train click never reached the model build"
    t0 = time.monotonic()
    page.close()
    wait_for(lambda: sid not in reg._sessions, timeout=STOP_LIMIT, every=0.02, what="unload")
    t_unload = time.monotonic() - t0
    assert built.wait(30)
    time.sleep(1.0)  # the click's handler finishes: it must start nothing
    sess = reg._sessions.get(sid)
    assert (sess is None or sess.run is None) and not trainer_threads() and reg.running_count() == 0
    print(f"\n[sessions] tab closed during its Train click: unload after {t_unload:.2f} s, no trainer started "
          f"({time.monotonic() - t0:.1f} s after the close)")
