"""Push and pull checkpoints to and from the Hugging Face Hub, with one-line errors and no pickle, ever.

A repo mirrors a checkpoint directory (config.json, weights.safetensors, ..., manifest.json) plus a README.md model
card. Pull lists the repo first and refuses anything that is not safetensors/JSON/PNG/text, downloads into the normal
HF cache, then validates exactly like a local checkpoint (manifest checksums + a full load).

Tokens come from the `token` argument or huggingface_hub's own lookup (HF_TOKEN, then a stored `hf auth login`).
They are never logged, written anywhere or put into messages; `_redact` is a last line of defence.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .checkpoint import CheckpointError, load_checkpoint, read_config, resolve

# What a dqngan repo may carry. Anything else (.bin/.pt/.pth/.pkl/.ckpt/.joblib/.npy/...) may be a pickle, which
# runs code when loaded, so a repo holding one is refused outright rather than partially downloaded.
SAFE_SUFFIXES = (".safetensors", ".json", ".png", ".md", ".txt")
SAFE_NAMES = (".gitattributes",)
ALLOW_PATTERNS = [f"*{s}" for s in SAFE_SUFFIXES] + list(SAFE_NAMES)
_TOKEN_RE = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")  # the shape of real HF tokens (hf_ + 34 chars)


class HubError(Exception):
    """A push/pull/whoami failed for a reason the user can fix; the message is one line and never holds a token."""


def is_safe_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name in SAFE_NAMES or name.lower().endswith(SAFE_SUFFIXES)


def check_repo_id(repo_id: str) -> str:
    """Validate `repo_id` locally (no HTTP). Returns it; raises HubError with the rules."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
        if not repo_id:
            raise HFValidationError("empty")
    except HFValidationError:
        raise HubError(f"invalid repo id {_clip(repr(repo_id))}: use OWNER/NAME with letters, digits, '-', '_' or "
                       f"'.' (no '--' or '..', at most 96 characters)") from None
    return repo_id


def whoami(token: str | None = None) -> str:
    """The user name the token (or HF_TOKEN / a stored login) belongs to."""
    from huggingface_hub import HfApi

    tok = _token(token)
    if not tok:
        raise HubError("no Hugging Face token: set HF_TOKEN (create one at https://huggingface.co/settings/tokens)")
    with _mapped("", None, tok):
        return str(HfApi(token=tok).whoami(token=tok)["name"])


def push_checkpoint(checkpoint_dir: str | os.PathLike, repo_id: str, *, token: str | None = None,
                    private: bool = False, revision: str | None = None, message: str | None = None,
                    command: str | None = None) -> str:
    """Upload a checkpoint and its model card as ONE commit; returns the commit URL.

    The repo is created if missing (`private` only applies then), and so is the branch `revision`."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from .modelcard import render_card

    check_repo_id(repo_id)
    if revision is not None and not revision.strip():
        raise HubError("--revision must be a branch name, got an empty string")
    try:  # a broken checkpoint must fail here, not after a half-useful upload
        ckpt = resolve(checkpoint_dir)
        cfg = read_config(ckpt)
    except CheckpointError as e:
        raise HubError(f"cannot push: {e}") from None
    tok = _token(token)
    if not tok:
        raise HubError("pushing needs a Hugging Face token with write access: set HF_TOKEN "
                       "(create one at https://huggingface.co/settings/tokens)")
    files = sorted(p for p in ckpt.iterdir() if p.is_file() and is_safe_file(p.name) and p.name != "README.md")
    api = HfApi(token=tok)
    with _mapped(repo_id, revision, tok, writing=True):
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        card = render_card(ckpt, repo_id, command=command)
        ops = [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in files]
        ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
        step = _step(ckpt)
        info = api.create_commit(repo_id, ops, commit_message=message or f"Upload dqngan checkpoint (step {step}, "
                                 f"dataset {cfg.dataset})", revision=revision)
    return str(info.commit_url)


def pull_checkpoint(repo_id: str, *, revision: str | None = None, out: str | os.PathLike | None = None,
                    token: str | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """Download a checkpoint into the HF cache, validate it fully, optionally copy it to `out`; returns its folder.

    Offline (HF_HUB_OFFLINE=1 or no network) a previously pulled snapshot is still returned from the cache."""
    import httpx2
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import OfflineModeIsEnabled

    check_repo_id(repo_id)
    out_dir = _check_out(out)
    tok = _token(token)
    cache = str(cache_dir) if cache_dir is not None else None
    with _mapped(repo_id, revision, tok):
        try:
            # model_info lists the files too, and fails fast: list_repo_files retries for ~23 s when offline.
            info = HfApi(token=tok).model_info(repo_id, revision=revision)
            files = [s.rfilename for s in info.siblings or []]
        except (OfflineModeIsEnabled, httpx2.TransportError):
            # Only a snapshot pulled before can help; allow_patterns kept pickles out of it back then.
            snap = Path(snapshot_download(repo_id, revision=revision, cache_dir=cache, token=tok,
                                          allow_patterns=ALLOW_PATTERNS, local_files_only=True))
        else:
            _refuse_unsafe(repo_id, files)
            snap = Path(snapshot_download(repo_id, revision=revision, cache_dir=cache, token=tok,
                                          allow_patterns=ALLOW_PATTERNS))
    _refuse_unsafe(repo_id, [str(p.relative_to(snap)) for p in snap.rglob("*") if p.is_file()])
    try:
        read_config(snap)
        load_checkpoint(snap, "cpu")  # the full load: shapes, optimizer and replay state must all match
    except CheckpointError as e:
        raise HubError(f"{repo_id} is not a usable dqngan checkpoint: {e}") from None
    if out_dir is None:
        return snap
    _export(snap, out_dir)
    return out_dir


# ---------------------------------------------------------------------------------------------------- helpers
def _token(token: str | None) -> str | None:
    from huggingface_hub import get_token

    return token or get_token()


def _step(ckpt: Path) -> str:
    try:
        return str(json.loads((ckpt / "metrics.json").read_text()).get("step", "?"))
    except (OSError, ValueError, AttributeError):
        return "?"


def _refuse_unsafe(repo_id: str, files: list[str]) -> None:
    bad = sorted(f for f in files if not is_safe_file(f))
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise HubError(f"refusing to pull {repo_id}: it carries {_clip(bad[0])}{more}; only safetensors, JSON, PNG "
                       f"and text files are accepted (.bin/.pt/.pth/.pkl/.ckpt files are pickles that can run code)")


def _check_out(out: str | os.PathLike | None) -> Path | None:
    """Fail before any download if `out` can't receive a checkpoint; never overwrite an unrelated folder."""
    if out is None:
        return None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HubError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise HubError(f"--out {out} is a non-empty folder that is not a checkpoint; choose a new or empty folder")
    return out


def _export(snap: Path, out: Path) -> None:
    """Copy the snapshot's files (the cache holds symlinks) to `out`, swapped in atomically like save_checkpoint."""
    tmp, old = out.with_name(out.name + ".tmp"), out.with_name(out.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in sorted(snap.iterdir()):
        if f.is_file() and is_safe_file(f.name):
            shutil.copyfile(f, tmp / f.name)
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    read_config(out)  # the copy verifies against manifest.json too


@contextmanager
def _mapped(repo_id: str, revision: str | None, token: str | None, writing: bool = False) -> Iterator[None]:
    """Turn huggingface_hub / network exceptions into one-line HubErrors (order matters: subclasses first)."""
    import httpx2
    from huggingface_hub import errors as E

    repo = repo_id or "the Hub"
    try:
        yield
    except HubError:
        raise
    except E.HFValidationError as e:
        raise HubError(_redact(f"invalid argument: {_first_line(e)}", token)) from None
    except (E.OfflineModeIsEnabled, E.LocalEntryNotFoundError, httpx2.TransportError):
        where = "this needs the Hub" if writing or not repo_id else f"{repo} is not in the local cache"
        raise HubError(f"the Hub is unreachable (offline: HF_HUB_OFFLINE=1 or no network) and {where}") from None
    except E.GatedRepoError:
        raise HubError(f"{repo} is gated: accept its conditions on its Hub page with your account, then set "
                       f"HF_TOKEN to a token of that account") from None
    except E.RepositoryNotFoundError:
        hint = ("if it is private, set HF_TOKEN to a token that can read it" if not token else
                "or it is private and your token cannot read it")
        raise HubError(f"repository {repo} not found ({hint})") from None
    except E.RevisionNotFoundError:
        raise HubError(f"revision {_clip(repr(revision))} not found in {repo}") from None
    except E.EntryNotFoundError as e:
        name = getattr(e.response, "url", None) if getattr(e, "response", None) is not None else None
        what = str(name).rsplit("/", 1)[-1] if name else "a file"
        raise HubError(f"{_clip(what)} not found in {repo} (it changed during the download? try again)") from None
    except E.LocalTokenNotFoundError:
        raise HubError("no Hugging Face token: set HF_TOKEN") from None
    except E.HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 401:
            raise HubError("the Hugging Face token was rejected (401): set HF_TOKEN to a valid token") from None
        if status == 403:
            need = "write access to" if writing else "access to"
            raise HubError(f"permission denied (403): your token lacks {need} {repo}") from None
        raise HubError(_redact(f"the Hub answered HTTP {status} for {repo}: {_first_line(e)}", token)) from None


def _redact(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "***")
    return _TOKEN_RE.sub("hf_***", text)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return _clip(lines[0] if lines else type(e).__name__)


def _clip(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."
