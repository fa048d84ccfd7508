"""The Models tab: save / load local checkpoints, and push to / pull from the Hugging Face Hub.

Tokens: typed into a password field and passed straight to dqngan.hub for that one call; never logged, echoed,
written to disk or kept in our own session objects (Gradio itself holds the field's value in that tab's session
until it ends, as it does for every input). A pull with a typed token uses a private, temporary download cache, so a
private repo never lands in the shared Hub cache, where another visitor's offline pull could find it.
Without a typed token the Hub's own lookup (HF_TOKEN) is used, except on a public Space, where that would let any
visitor act with the Space owner's token (set DQNGAN_HUB_ENV_TOKEN=1 to allow it anyway).
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from .context import AppContext, safe_name
from .feedback import UserError, guard

MAX_SAVED = 20  # checkpoints the app keeps in its save folder (oldest are not deleted: saving more is refused)


def _hub() -> Any:
    try:
        from .. import hub
    except ImportError as e:  # the Hub module or huggingface_hub missing: the rest of the app still works
        raise UserError(f"Hub support is not available here ({e})") from None
    return hub


def _token(typed: str | None) -> str | None:
    typed = (typed or "").strip()
    if typed:
        return typed
    if os.environ.get("SYSTEM") == "spaces" and not os.environ.get("DQNGAN_HUB_ENV_TOKEN"):
        raise UserError("enter your own Hugging Face token (this public app does not lend its token to visitors)")
    return None  # dqngan.hub falls back to HF_TOKEN / a stored login


def build(ctx: AppContext, status: Any) -> dict:
    reg = ctx.registry
    gr.Markdown("Save the run you are looking at, open a saved one (it becomes your run; press Train to continue), "
                "or share it on the Hugging Face Hub.")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Local checkpoints")
            listing = gr.Dropdown(ctx.local_checkpoints(), label="checkpoints on this machine", elem_id="ckpt-list",
                                  allow_custom_value=False)
            with gr.Row():
                refresh = gr.Button("⟳ Refresh", elem_id="ckpt-refresh")
                load = gr.Button("Load selected", elem_id="ckpt-load", variant="primary")
            with gr.Row():
                name = gr.Textbox(label="save as (name)", placeholder="my-run", elem_id="ckpt-name")
                save = gr.Button("Save current run", elem_id="ckpt-save")
        with gr.Column():
            gr.Markdown("### Hugging Face Hub")
            repo = gr.Textbox(label="repo id", placeholder="your-name/dqngan-mnist", elem_id="hub-repo")
            with gr.Row():
                revision = gr.Textbox(label="branch / revision (optional)", elem_id="hub-revision")
                private = gr.Checkbox(False, label="private (when creating)", elem_id="hub-private")
            token = gr.Textbox(label="token (used for this click only; never logged or saved)", type="password",
                               elem_id="hub-token")
            with gr.Row():
                login = gr.Button("Check token", elem_id="hub-login")
                push = gr.Button("⬆ Push current run", elem_id="hub-push")
                pull = gr.Button("⬇ Pull and load", elem_id="hub-pull")
    msg = gr.Markdown("", elem_id="models-msg")

    def sid_of(request: gr.Request) -> str:
        return request.session_hash or "anon"

    @guard(1)
    def do_refresh() -> Any:
        return gr.update(choices=ctx.local_checkpoints())

    refresh.click(do_refresh, None, [listing], api_name="list_checkpoints")

    @guard(2, on_error=lambda m: (f"⚠️ {m}", gr.skip()))
    def do_save(n: str, request: gr.Request) -> tuple:
        n = safe_name(n)
        run = reg.view(sid_of(request))
        if run.owner is not None and run.owner != sid_of(request):
            raise UserError("you are watching another visitor's run; you can only save your own or the shared model")
        root = ctx.save_root
        root.mkdir(parents=True, exist_ok=True)
        existing = [p for p in root.iterdir() if (p / "manifest.json").is_file()]
        if len(existing) >= MAX_SAVED and not (root / n).exists():
            raise UserError(f"the save folder already holds {MAX_SAVED} checkpoints; overwrite one (reuse its name)")
        path = run.runner.save(root / n)
        return f"saved step {run.runner.step_count} to `{ctx.rel(path)}`", gr.update(
            choices=ctx.local_checkpoints(), value=ctx.rel(path))

    save.click(do_save, [name], [msg, listing], api_name="save_checkpoint")

    def adopt(request: gr.Request, path: Path, label: str) -> str:
        sid = sid_of(request)
        reg.unwatch(sid)
        run = reg.own(sid, lambda: ctx.from_checkpoint(path, label=label, with_data=True), replace=True)
        reg.session(sid).notice = f"loaded {label}: press Train to continue it"
        return f"loaded {label} at step {run.runner.step_count}; it is now your run (Train tab)"

    @guard(2, on_error=lambda m: (f"⚠️ {m}", gr.skip()))
    def do_load(shown: str, request: gr.Request) -> tuple:
        if not shown:
            raise UserError("pick a checkpoint from the list first (⟳ Refresh if it is new)")
        path = ctx.resolve_local(shown)
        return adopt(request, path, f"checkpoint {shown}"), gr.skip()

    loaded = [load.click(do_load, [listing], [msg, status], api_name="load_checkpoint")]

    @guard(1, on_error=lambda m: f"⚠️ {m}")
    def do_login(tok: str) -> str:
        hub = _hub()
        try:
            return f"token OK: logged in as **{hub.whoami(_token(tok))}**"
        except hub.HubError as e:
            raise UserError(str(e)) from None

    login.click(do_login, [token], [msg], api_name="hub_whoami")

    @guard(1, on_error=lambda m: f"⚠️ {m}")
    def do_push(repo_id: str, rev: str, priv: bool, tok: str, request: gr.Request) -> str:
        hub = _hub()
        run = reg.view(sid_of(request))
        if run.owner is not None and run.owner != sid_of(request):
            raise UserError("you are watching another visitor's run; push your own run or the shared model")
        t = _token(tok)
        tmp = Path(tempfile.mkdtemp(prefix="dqngan-push-"))
        try:
            ck = run.runner.save(tmp / "checkpoint")
            url = hub.push_checkpoint(ck, (repo_id or "").strip(), token=t, private=bool(priv),
                                      revision=(rev or "").strip() or None)
        except hub.HubError as e:
            raise UserError(str(e)) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return f"⬆ pushed step {run.runner.step_count}: {url}"

    push.click(do_push, [repo, revision, private, token], [msg], api_name="hub_push")

    @guard(2, on_error=lambda m: (f"⚠️ {m}", gr.skip()))
    def do_pull(repo_id: str, rev: str, tok: str, request: gr.Request) -> tuple:
        hub = _hub()
        repo_id = (repo_id or "").strip()
        t = _token(tok)
        # A typed token may open a private repo: keep its files out of the shared cache (see the module doc).
        own_cache = Path(tempfile.mkdtemp(prefix="dqngan-pull-")) if (tok or "").strip() else None
        try:
            folder = hub.pull_checkpoint(repo_id, revision=(rev or "").strip() or None, token=t, cache_dir=own_cache)
            return adopt(request, Path(folder), f"{repo_id} from the Hub"), gr.skip()
        except hub.HubError as e:
            raise UserError(str(e)) from None
        finally:
            if own_cache is not None:  # the run is in memory now
                shutil.rmtree(own_cache, ignore_errors=True)

    loaded.append(pull.click(do_pull, [repo, revision, token], [msg, status], api_name="hub_pull"))
    return {"listing": listing, "refresh": do_refresh, "loaded": loaded}
