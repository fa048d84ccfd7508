"""Hub push/pull/whoami, model card, error mapping, pickle refusal, CLI and Hub datasets, over real HTTP to a fake Hub.

The fake Hub (tests/fake_hub.py) runs for the whole session; each test gets its own HF_HOME and points
huggingface_hub at the server by patching its import-time constants (and HF_* env vars for subprocesses).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from fake_hub import FakeHub, point_client_at
from helpers import run_cli_batch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
TOKENS = ("hf_good", "hf_bob", "hf_bad")
ALICE_TOKEN = "hf_good"


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def fake_hub():
    hub = FakeHub().start()
    yield hub
    hub.stop()
    import huggingface_hub

    huggingface_hub.close_session()  # keep-alive connections would otherwise point at the dead server


@pytest.fixture
def hub(fake_hub, tmp_path, monkeypatch):
    """Point huggingface_hub at the fake server, online, with HF_HOME in tmp and alice's token in HF_TOKEN."""
    ep, home = fake_hub.url, tmp_path / "hf_home"
    point_client_at(monkeypatch, ep, home)
    env = {"HF_ENDPOINT": ep, "HF_HOME": str(home), "HF_HUB_OFFLINE": "0", "HF_TOKEN": ALICE_TOKEN,
           "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("HF_HUB_CACHE", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    fake_hub.home = home
    return fake_hub


@pytest.fixture(scope="session")
def ckpt_files(ckpt):
    return {p.name: p.read_bytes() for p in ckpt.iterdir()}


def _set_offline(monkeypatch, on: bool = True) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", on)


def _tensors_equal(a: Path, b: Path) -> None:
    for name in ("weights.safetensors", "train_state.safetensors"):
        ta, tb = load_file(str(a / name)), load_file(str(b / name))
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), k


def _hub_error(fn, *args, **kwargs) -> str:
    from dqngan.hub import HubError

    with pytest.raises(HubError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and msg
    assert not any(t in msg for t in TOKENS), msg
    return msg


# ---------------------------------------------------------------------------------------------------- push / pull
def test_push_pull_roundtrip_identical_and_resumes(hub, ckpt, tmp_path, monkeypatch):
    from dqngan.checkpoint import load_checkpoint
    from dqngan.hub import pull_checkpoint, push_checkpoint
    from dqngan.modelcard import render_card

    url = push_checkpoint(ckpt, "alice/roundtrip")
    assert "/alice/roundtrip/commit/" in url
    repo = hub.repos[("model", "alice/roundtrip")]
    assert len(repo.commits) == 2  # the repo's initial commit + exactly ONE upload commit
    head = repo.commits[repo.branches["main"]]
    assert set(head) == {p.name for p in ckpt.iterdir()} | {"README.md", ".gitattributes"}
    assert head["README.md"].decode() == render_card(ckpt, "alice/roundtrip")
    assert not any("lfs" in path or "xet" in path for _, path, _ in hub.requests)

    out = pull_checkpoint("alice/roundtrip", out=tmp_path / "pulled")
    assert out == tmp_path / "pulled" and not any(p.is_symlink() for p in out.iterdir())
    _tensors_equal(ckpt, out)
    a, b = load_checkpoint(ckpt, "cpu"), load_checkpoint(out, "cpu")
    z = torch.randn(16, a.cfg.z_dim, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.generate(z), b.generate(z))
    assert torch.equal(a.generate(z, refine=True), b.generate(z, refine=True))
    b.run(steps=2)
    assert b.step_count == a.step_count + 2

    cached = pull_checkpoint("alice/roundtrip")  # no --out: the HF cache snapshot itself
    assert str(cached).startswith(str(hub.home / "hub" / "models--alice--roundtrip" / "snapshots"))
    # A second, unchanged push makes no new commit; offline, the cached snapshot still pulls.
    assert "/commit/" in push_checkpoint(ckpt, "alice/roundtrip")
    assert len(repo.commits) == 2
    _set_offline(monkeypatch)
    assert pull_checkpoint("alice/roundtrip") == cached


def test_lab_one_liner_pushes_loads_samples_refines(hub, ckpt, tmp_path):
    """`Lab.from_pretrained` on a folder and on a Hub repo, `push_to_hub`, and repos pushed the old way
    (`push_checkpoint`, as `dqngan push` does) load the same."""
    import numpy as np

    from dqngan import Lab
    from dqngan.hub import push_checkpoint

    local = Lab.from_pretrained(ckpt, device="cpu")
    url = local.push_to_hub("alice/lab-one-liner", commit_message="one line")
    assert "/alice/lab-one-liner/commit/" in url
    repo = hub.repos[("model", "alice/lab-one-liner")]
    head = repo.commits[repo.branches["main"]]
    assert {"weights.safetensors", "config.json", "README.md"} <= set(head)
    assert all(not n.endswith((".bin", ".pt", ".pkl")) for n in head)
    assert not any(ALICE_TOKEN.encode() in data for data in head.values())  # the token is in no file
    card = head["README.md"].decode()
    assert 'Lab.from_pretrained("alice/lab-one-liner")' in card
    lab = Lab.from_pretrained("alice/lab-one-liner", device="cpu")
    assert np.array_equal(lab.sample(8, seed=3), local.sample(8, seed=3))
    assert np.array_equal(lab.refine(8, seed=3), local.refine(8, seed=3))
    assert lab.sample(8, seed=3).shape == (8, 28, 28) and lab.sample(8, seed=3).dtype == np.uint8
    with pytest.raises(ValueError, match="without goals"):
        lab.steer(3)
    push_checkpoint(ckpt, "alice/old-layout")
    old = Lab.from_pretrained("alice/old-layout", device="cpu")
    assert np.array_equal(old.refine(8, seed=3), local.refine(8, seed=3))
    saved = lab.save_pretrained(tmp_path / "saved")
    assert np.array_equal(Lab.from_pretrained(saved, device="cpu").sample(4, seed=1), lab.sample(4, seed=1))


def test_lab_goal_agent_refuses_refine_without_a_goal():
    """The shipped goal agent never saw a no-goal state: refine() refuses, steer() works."""
    import numpy as np

    from dqngan import Lab

    goals = ROOT / "checkpoints" / "mnist-goals"
    if not (goals / "manifest.json").is_file():
        pytest.skip("the shipped goal checkpoint is missing")
    lab = Lab.from_pretrained(goals, device="cpu")
    with pytest.raises(ValueError, match="trained only with goal digits"):
        lab.refine(4)
    assert lab.steer(7, n=4).shape == (4, 28, 28) and not np.array_equal(lab.steer(7, n=4), lab.sample(4))
    with pytest.raises(ValueError, match="digit 0-9"):
        lab.steer(12)


def test_push_to_branch_with_message_and_pull_revision(hub, ckpt, tmp_path):
    from dqngan.hub import pull_checkpoint, push_checkpoint

    url = push_checkpoint(ckpt, "alice/branchy", revision="exp", message="try a branch", private=True)
    repo = hub.repos[("model", "alice/branchy")]
    assert repo.private and url.endswith(repo.branches["exp"]) and repo.branches["exp"] != repo.branches["main"]
    _tensors_equal(ckpt, pull_checkpoint("alice/branchy", revision="exp", out=tmp_path / "exp"))
    _tensors_equal(ckpt, pull_checkpoint("alice/branchy", revision=repo.branches["exp"]))  # a commit sha works too
    assert "not a usable dqngan checkpoint" in _hub_error(pull_checkpoint, "alice/branchy")  # main: no checkpoint


def test_whoami(hub, monkeypatch):
    from dqngan.hub import whoami

    assert whoami() == "alice"
    assert whoami("hf_bob") == "bob"


# ---------------------------------------------------------------------------------------------------- model card
def test_model_card_metadata_and_content(ckpt, tmp_path):
    import shutil

    from dqngan.modelcard import render_card

    card = render_card(ckpt, "alice/demo")
    m = re.match(r"^---\n(.*?)\n---\n", card, re.S)
    meta = yaml.safe_load(m.group(1))
    assert meta["library_name"] == "dqngan" and meta["license"] == "mit"
    assert {"dqn", "gan", "dcgan", "reinforcement-learning", "image-generation", "pytorch", "safetensors"} <= set(
        meta["tags"])
    assert meta["datasets"] == ["ylecun/mnist"] and meta["metrics"] == ["fid"]
    assert 'Lab.from_pretrained("alice/demo")' in card and "dqngan pull --repo-id alice/demo --out ckpt" in card
    assert "dqngan sample --checkpoint ckpt --n 64 --out samples.png --refine" in card
    assert "](samples.png)" in card and "CC BY-SA 3.0" in card and "| `z_dim` | 100 |" in card
    assert "hf_" not in card

    d = tmp_path / "with_eval"
    shutil.copytree(ckpt, d)
    (d / "evaluation.md").write_text("# Evaluation report\n\n| metric | value |\n|---|---|\n| fid | 12.5 |\n")
    card = render_card(d, "alice/demo", command="python -m dqngan train --out run --steps 5")
    assert "| fid | 12.5 |" in card and "python -m dqngan train --out run --steps 5" in card


# ---------------------------------------------------------------------------------------------------- errors
def test_errors_are_one_line_hub_errors(hub, ckpt, ckpt_files, tmp_path, monkeypatch):
    from dqngan.hub import pull_checkpoint, push_checkpoint, whoami

    n = len(hub.requests)
    for bad in ("not a repo", "a/b/c", "bad--name/x", "x/" + "y" * 97, "", "ok/name.git"):
        assert "invalid repo id" in _hub_error(pull_checkpoint, bad)
        assert "invalid repo id" in _hub_error(push_checkpoint, ckpt, bad)
    assert len(hub.requests) == n  # rejected before any HTTP

    hub.add_repo("alice/secret", ckpt_files, private=True)
    hub.add_repo("bob/gated", ckpt_files, gated=True)
    hub.add_repo("alice/racy", ckpt_files).hidden.add("weights.safetensors")
    hub.add_repo("alice/notackpt", {"README.md": b"# hello\n"})
    hub.add_repo("alice/public", ckpt_files)

    assert "repository alice/missing not found" in _hub_error(pull_checkpoint, "alice/missing")
    assert "revision 'nope' not found in alice/public" in _hub_error(pull_checkpoint, "alice/public", revision="nope")
    assert "gated" in _hub_error(pull_checkpoint, "bob/gated")
    assert "weights.safetensors not found in alice/racy" in _hub_error(pull_checkpoint, "alice/racy")
    assert "not a usable dqngan checkpoint" in _hub_error(pull_checkpoint, "alice/notackpt")
    assert "permission denied (403)" in _hub_error(push_checkpoint, ckpt, "bob/gated")
    assert "cannot push" in _hub_error(push_checkpoint, tmp_path / "nowhere", "alice/x")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "keep.txt").write_text("mine")
    assert "not a checkpoint" in _hub_error(pull_checkpoint, "alice/public", out=tmp_path / "junk")

    monkeypatch.setenv("HF_TOKEN", "hf_bob")  # another user: a private repo looks missing (404)
    assert "your token cannot read it" in _hub_error(pull_checkpoint, "alice/secret")
    monkeypatch.setenv("HF_TOKEN", "hf_bad")  # a wrong token: 401
    assert "token was rejected (401)" in _hub_error(pull_checkpoint, "alice/public")
    assert "token was rejected (401)" in _hub_error(push_checkpoint, ckpt, "alice/x")
    assert "token was rejected (401)" in _hub_error(whoami)
    monkeypatch.delenv("HF_TOKEN")  # no token at all
    assert "if it is private, set HF_TOKEN" in _hub_error(pull_checkpoint, "alice/secret")
    assert "gated" in _hub_error(pull_checkpoint, "bob/gated")
    assert "needs a Hugging Face token" in _hub_error(push_checkpoint, ckpt, "alice/x")
    assert "no Hugging Face token" in _hub_error(whoami)
    assert ("model", "alice/x") not in hub.repos  # nothing was created

    monkeypatch.setenv("HF_TOKEN", ALICE_TOKEN)
    _set_offline(monkeypatch)  # HF_HUB_OFFLINE=1
    for call in (lambda: pull_checkpoint("alice/public"), lambda: push_checkpoint(ckpt, "alice/x"), whoami):
        assert "the Hub is unreachable" in _hub_error(call)
    _set_offline(monkeypatch, False)
    from huggingface_hub import constants, hf_api

    dead = "http://127.0.0.1:9"  # the discard port: connection refused
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hf_api.api, "endpoint", dead)
    assert "alice/public is not in the local cache" in _hub_error(pull_checkpoint, "alice/public")
    assert "the Hub is unreachable" in _hub_error(push_checkpoint, ckpt, "alice/x")
    assert "the Hub is unreachable" in _hub_error(whoami)


@pytest.mark.parametrize("bad", ["pytorch_model.bin", "model.pt", "sub/model.pth", "agent.pkl", "z.npy"])
def test_pickle_carrying_repo_is_refused_before_download(hub, ckpt_files, tmp_path, bad):
    from dqngan.hub import pull_checkpoint

    marker = tmp_path / "pwned"
    # A protocol-0 pickle that would create `marker` when unpickled (hand-written: no pickle module needed).
    payload = f"cbuiltins\nexec\n(Vopen({str(marker)!r}, 'w').write('x')\ntR.".encode()
    repo_id = f"alice/pickled-{len(hub.repos)}"
    hub.add_repo(repo_id, {**ckpt_files, bad: payload})
    n = len(hub.requests)
    msg = _hub_error(pull_checkpoint, repo_id, out=tmp_path / "out")
    assert f"refusing to pull {repo_id}: it carries {bad}" in msg
    assert not marker.exists() and not (tmp_path / "out").exists()
    assert not any("/resolve/" in path for _, path, _ in hub.requests[n:])  # nothing was downloaded
    assert not (hub.home / "hub" / f"models--{repo_id.replace('/', '--')}" / "snapshots").exists()


# ---------------------------------------------------------------------------------------------------- CLI
def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            **extra}


def test_cli_push_pull_whoami_and_errors(hub, ckpt, tmp_path):
    # a bad token in the environment: a process of its own (the real `python -m dqngan` command), started first so
    # that its start-up overlaps the batch's on the second core
    gone = subprocess.Popen([sys.executable, "-m", "dqngan", "pull", "--repo-id", "alice/nothing-here", "--out",
                             str(tmp_path / "y")], cwd=ROOT, env=_env(HF_TOKEN="hf_bad"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # the commands sharing an environment run in one subprocess (helpers.run_cli_batch: one interpreter start-up)
        r, r2, r3, bad = run_cli_batch([
            ["push", "--checkpoint", str(ckpt), "--repo-id", "alice/cli-model", "--message", "from the CLI"],
            ["pull", "--repo-id", "alice/cli-model", "--out", str(tmp_path / "pulled")],
            ["whoami"],
            ["pull", "--repo-id", "not/a/repo", "--out", str(tmp_path / "x")],
        ], tmp_path, _env(), ROOT)
        _, gone_err = gone.communicate(timeout=120)
    finally:
        gone.kill()
    for done in (r, r2, r3, bad):
        assert done["crash"] is None, done["crash"]
    assert r["rc"] == 0, r["stderr"]
    assert "/alice/cli-model/commit/" in r["stdout"].strip().splitlines()[-1]
    assert r2["rc"] == 0, r2["stderr"]
    assert r2["stdout"].strip().splitlines()[-1] == str(tmp_path / "pulled")
    _tensors_equal(ckpt, tmp_path / "pulled")
    assert (r3["rc"], r3["stdout"].strip()) == (0, "alice")
    for done in (r, r2, r3):
        assert ALICE_TOKEN not in done["stdout"] + done["stderr"]

    assert bad["rc"] != 0 and bad["stderr"].count("\n") == 1 and "Traceback" not in bad["stderr"]
    assert "invalid repo id" in bad["stderr"]
    assert gone.returncode == 1 and gone_err.count("\n") == 1 and "401" in gone_err
    assert "hf_bad" not in gone_err


# ---------------------------------------------------------------------------------------------------- datasets
def _parquet(images, labels) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    pngs = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img.numpy(), mode="L").save(buf, format="PNG")
        pngs.append({"bytes": buf.getvalue(), "path": None})
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array(pngs, type=image_type), "label": pa.array(labels.tolist(), pa.int64())})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def test_hub_datasets_download_then_offline_from_cache(hub, monkeypatch):
    from dqngan.data import HUB_DATASETS, load_dataset

    g = torch.Generator().manual_seed(0)
    made = {}
    for i, name in enumerate(("mnist", "fashion-mnist")):
        images = torch.randint(0, 256, (6 + i, 28, 28), dtype=torch.uint8, generator=g)
        labels = torch.arange(6 + i) % 10
        repo_id, path, _ = HUB_DATASETS[name]
        hub.add_repo(repo_id, {path: _parquet(images, labels)}, repo_type="dataset")
        made[name] = (images, labels)
    assert HUB_DATASETS["mnist"][:2] == ("ylecun/mnist", "mnist/train-00000-of-00001.parquet")
    assert HUB_DATASETS["fashion-mnist"][:2] == ("zalando-datasets/fashion_mnist",
                                                 "fashion_mnist/train-00000-of-00001.parquet")
    for online in (True, False):
        _set_offline(monkeypatch, not online)  # the second round is served from the HF cache alone
        for name, (images, labels) in made.items():
            data = load_dataset(name)
            assert torch.equal(data.images, images) and torch.equal(data.labels, labels) and data.name == name
    assert (hub.home / "hub" / "datasets--ylecun--mnist").is_dir()


# ---------------------------------------------------------------------------------------------------- secrets
def test_token_never_leaks(hub, ckpt, tmp_path, capfd):
    from dqngan.hub import HubError, pull_checkpoint, push_checkpoint, whoami
    from dqngan.modelcard import render_card

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler, root = Keep(logging.DEBUG), logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    hf_logger = logging.getLogger("huggingface_hub")
    hf_old = hf_logger.level
    hf_logger.setLevel(logging.DEBUG)
    errors = []
    try:
        push_checkpoint(ckpt, "alice/secret-test", token=ALICE_TOKEN)
        out = pull_checkpoint("alice/secret-test", out=tmp_path / "pulled", token=ALICE_TOKEN)
        assert whoami(ALICE_TOKEN) == "alice"
        for call in (lambda: pull_checkpoint("alice/secret-test", revision="nope", token=ALICE_TOKEN),
                     lambda: pull_checkpoint("bob/none", token=ALICE_TOKEN)):
            try:
                call()
            except HubError as e:
                errors.append(str(e))
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        hf_logger.setLevel(hf_old)
    assert len(errors) == 2 and records  # the debug logs really were captured
    captured = capfd.readouterr()
    texts = [*records, *errors, captured.out, captured.err, render_card(ckpt, "alice/secret-test")]
    assert not any(ALICE_TOKEN in t for t in texts)
    files = [p for d in (out, ckpt, hub.home) for p in Path(d).rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in files) and any("blobs" in p.parts for p in files)
    for p in files:
        assert ALICE_TOKEN.encode() not in p.read_bytes(), p
    repo = hub.repos[("model", "alice/secret-test")]
    for content in repo.commits[repo.branches["main"]].values():
        assert ALICE_TOKEN.encode() not in content
    assert json.loads((out / "config.json").read_text())
