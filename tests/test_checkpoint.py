import json
import shutil

import pytest
import torch

from dqngan.checkpoint import CheckpointError, load_checkpoint, read_config, resolve, save_checkpoint


def _weights_equal(a, b):
    for name, m in a.modules().items():
        sa, sb = m.state_dict(), b.modules()[name].state_dict()
        if not all(torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return True


def _fix_manifest(path):
    """Re-sign a tampered checkpoint so the test reaches the deeper check it is after."""
    from dqngan.checkpoint import _digest

    m = json.loads((path / "manifest.json").read_text())
    m["files"] = {f: _digest(path / f) for f in m["files"]}
    (path / "manifest.json").write_text(json.dumps(m))


def test_round_trip_and_exact_resume(make_trainer, tmp_path, mnist):
    a = make_trainer()
    a.run(steps=20)
    b = make_trainer()
    b.run(steps=10)
    save_checkpoint(b, tmp_path / "ck")
    assert not (tmp_path / "ck.tmp").exists() and not (tmp_path / "ck.old").exists()
    c = load_checkpoint(tmp_path / "ck", device="cpu", data=mnist)
    assert c.step_count == 10 and _weights_equal(b, c)
    assert c.history.to_dict()["d_loss"] == b.history.to_dict()["d_loss"]
    c.run(steps=10)
    assert c.step_count == 20
    assert _weights_equal(a, c)  # bit-identical to the uninterrupted run
    assert len(c.replay) == len(a.replay) and torch.equal(c.env.z, a.env.z)
    files = {p.name for p in (tmp_path / "ck").iterdir()}
    assert {"config.json", "weights.safetensors", "train_state.safetensors", "metrics.json", "manifest.json",
            "samples.png"} <= files


def test_interrupted_save_falls_back_to_complete_copy(make_trainer, tmp_path):
    t = make_trainer()
    t.run(steps=2)
    save_checkpoint(t, tmp_path / "ck")
    # A save killed after moving DIR aside but before moving DIR.tmp in:
    shutil.copytree(tmp_path / "ck", tmp_path / "ck.tmp")
    (tmp_path / "ck").rename(tmp_path / "ck.old")
    assert resolve(tmp_path / "ck") == tmp_path / "ck.tmp"
    shutil.rmtree(tmp_path / "ck.tmp")
    assert resolve(tmp_path / "ck") == tmp_path / "ck.old"
    assert read_config(tmp_path / "ck").z_dim == t.cfg.z_dim
    save_checkpoint(t, tmp_path / "ck")  # the next save cleans up
    assert resolve(tmp_path / "ck") == tmp_path / "ck"


@pytest.fixture
def saved(make_trainer, tmp_path):
    t = make_trainer()
    t.run(steps=2)
    return save_checkpoint(t, tmp_path / "ck")


def _err(path, match):
    with pytest.raises(CheckpointError, match=match) as e:
        load_checkpoint(path, device="cpu")
    assert "\n" not in str(e.value)


def test_missing_and_not_a_directory(tmp_path):
    _err(tmp_path / "nope", "no checkpoint at")
    (tmp_path / "file").write_text("x")
    _err(tmp_path / "file", "is a file")
    (tmp_path / "empty").mkdir()
    _err(tmp_path / "empty", "not a complete checkpoint")


def test_corrupt_and_truncated_weights(saved):
    w = saved / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-100] ^= 0xFF
    w.write_bytes(bytes(data))
    _err(saved, "corrupt")
    w.write_bytes(bytes(data[: len(data) // 2]))
    _fix_manifest(saved)
    _err(saved, "not a valid safetensors file")


def test_pickle_renamed_safetensors_is_never_unpickled(saved, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"G.x": torch.zeros(1), "evil": Evil()}, saved / "weights.safetensors")
    _fix_manifest(saved)
    _err(saved, "never loaded")
    assert not marker.exists()


def test_weights_of_another_width(saved, make_trainer, tmp_path):
    other = make_trainer(width=0.25)
    other.run(steps=1)
    o = save_checkpoint(other, tmp_path / "other")
    shutil.copy(o / "weights.safetensors", saved / "weights.safetensors")
    _fix_manifest(saved)
    _err(saved, r"has shape .* but the config \(width=0.125")


def test_bad_config_values(saved):
    cfg = json.loads((saved / "config.json").read_text())
    for key, value, match in [("mystery", 1, "unknown config key"), ("q_lr", -1, "q_lr must be >= 0"),
                              ("horizon", 10**9, "horizon must be <=")]:
        bad = dict(cfg, **{key: value})
        (saved / "config.json").write_text(json.dumps(bad))
        _fix_manifest(saved)
        _err(saved, match)
    (saved / "config.json").write_text("{not json")
    _fix_manifest(saved)
    _err(saved, "not valid JSON")


def test_slim_checkpoint_has_no_replay_but_resumes(make_trainer, tmp_path, mnist):
    t = make_trainer()
    t.run(steps=6)
    full = save_checkpoint(t, tmp_path / "full")
    slim = save_checkpoint(t, tmp_path / "slim", include_replay=False)
    assert (slim / "train_state.safetensors").stat().st_size < (full / "train_state.safetensors").stat().st_size
    c = load_checkpoint(slim, device="cpu", data=mnist)
    assert len(c.replay) == 0 and c.step_count == 6 and _weights_equal(t, c)
    c.run(steps=3)
    assert c.step_count == 9


def test_new_agent_keeps_gan_and_allows_a_different_q_network(make_trainer, tmp_path, mnist):
    t = make_trainer()
    t.run(steps=6)
    ck = save_checkpoint(t, tmp_path / "ck")
    with pytest.raises(CheckpointError, match="Q.net.0.weight has shape"):
        load_checkpoint(ck, device="cpu", data=mnist, overrides={"q_state": "grad"})
    c = load_checkpoint(ck, device="cpu", data=mnist, overrides={"q_state": "grad"}, new_agent=True)
    assert torch.equal(c.G_ema.net[0].weight, t.G_ema.net[0].weight) and c.step_count == 6
    assert c.agent_steps == 0 and len(c.replay) == 0
    c.run(steps=4)
    z_t, _ = c.refine(torch.randn(3, c.cfg.z_dim))  # the grad view works under refine's no_grad too
    assert z_t.shape == (3, c.cfg.z_dim)
