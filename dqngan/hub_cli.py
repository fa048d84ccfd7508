"""`python -m dqngan {push,pull,whoami}`: the Hub commands, plugged into cli.py through `register`.

The token comes from HF_TOKEN (or a stored `hf auth login`) only: a --token flag would leak into shell history and ps.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from .hub import HubError, check_repo_id, pull_checkpoint, push_checkpoint, whoami

USER_ERRORS = (HubError,)


def _repo_id(text: str) -> str:
    try:
        return check_repo_id(text)
    except HubError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = sub.add_parser("push", help="upload a checkpoint + model card to the Hugging Face Hub (needs HF_TOKEN)",
                       description="Upload DIR and a generated model card as one commit. The repo (and the branch "
                                   "--revision) is created if missing. The token is read from HF_TOKEN.")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint directory to upload")
    p.add_argument("--repo-id", required=True, type=_repo_id, metavar="OWNER/NAME")
    p.add_argument("--private", action="store_true", help="create the repo as private (if it does not exist yet)")
    p.add_argument("--revision", metavar="BRANCH", help="branch to commit to (created if missing; default main)")
    p.add_argument("--message", metavar="M", help="commit message")

    q = sub.add_parser("pull", help="download a checkpoint from the Hub, validate it and copy it to DIR",
                       description="Download into the Hugging Face cache (repos carrying pickle files are refused), "
                                   "validate like a local checkpoint, then copy to --out.")
    q.add_argument("--repo-id", required=True, type=_repo_id, metavar="OWNER/NAME")
    q.add_argument("--revision", metavar="REV", help="branch, tag or commit (default main)")
    q.add_argument("--out", required=True, metavar="DIR", help="where to put the checkpoint")

    sub.add_parser("whoami", help="the Hub user HF_TOKEN belongs to")
    return {"push": cmd_push, "pull": cmd_pull, "whoami": cmd_whoami}


def _env_token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


def cmd_push(a: argparse.Namespace) -> int:
    url = push_checkpoint(a.checkpoint, a.repo_id, token=_env_token(), private=a.private, revision=a.revision,
                          message=a.message)
    print(url)
    return 0


def cmd_pull(a: argparse.Namespace) -> int:
    print(pull_checkpoint(a.repo_id, revision=a.revision, out=a.out, token=_env_token()))
    return 0


def cmd_whoami(a: argparse.Namespace) -> int:
    print(whoami(_env_token()))
    return 0
