"""A small in-memory fake of the Hugging Face Hub HTTP API (what huggingface_hub 2.4 calls), on 127.0.0.1.

Implemented: whoami-v2, agent-harnesses, repos/create, validate-yaml, repo info (+ /revision/{rev}), tree, refs,
preupload, commit (NDJSON, base64 "regular" files only), branch creation, and HEAD/GET .../resolve/{rev}/{path}
with the ETag / X-Repo-Commit / Content-Length headers the client checks. Models, datasets and spaces alike.

Uploads never touch LFS or Xet: preupload answers "regular" for every file, a commit carrying an lfsFile is refused
with 400, and downloads never send X-Xet-* headers (which would switch the client to hf_xet).

Auth: "Bearer hf_good" is alice, "Bearer hf_bob" is bob, any other token is 401; no header is anonymous. Private
repos answer 401 (anonymous) or 404 (other users) with X-Error-Code RepoNotFound, like the real Hub. Gated repos list
their files but refuse downloads (401/403, X-Error-Code GatedRepo) to anyone but the owner and `granted` users.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

USERS = {"hf_good": "alice", "hf_bob": "bob"}
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
SHA_RE = re.compile(r"[0-9a-f]{40}")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def point_client_at(monkeypatch, url: str, home) -> None:
    """Point an already imported huggingface_hub at `url`, online, with its cache and token files under `home`
    (its constants and the module-level HfApi were read at import, so the environment alone is not enough)."""
    from huggingface_hub import constants, hf_api

    patched = {
        "ENDPOINT": url, "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
        "HF_TOKEN_PATH": str(home / "token"), "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
    }
    for name, value in patched.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", url)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    gated: bool = False
    granted: set[str] = field(default_factory=set)
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit sha
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> {path: content}
    hidden: set[str] = field(default_factory=set)  # listed in the tree, 404 on download (deleted mid-pull)

    @property
    def owner(self) -> str:
        return self.repo_id.split("/")[0]


class HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status), for assertions
        self._counter = itertools.count()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------------------------------------ seeding
    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None, *, repo_type: str = "model",
                 private: bool = False, gated: bool = False, granted: set[str] | None = None) -> Repo:
        """Create (or replace) a repo directly, bypassing HTTP; its files form the first commit on main."""
        with self.lock:
            repo = Repo(repo_type, repo_id, private, gated, set(granted or ()))
            self.repos[(repo_type, repo_id)] = repo
            self.commit(repo, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
                               **(files or {})}, "main", "initial commit")
            return repo

    def commit(self, repo: Repo, adds: dict[str, bytes], branch: str, summary: str,
               deletes: tuple[str, ...] = ()) -> str:
        with self.lock:
            parent = repo.branches.get(branch)
            files = dict(repo.commits[parent]) if parent else {}
            for d in deletes:
                files = {p: c for p, c in files.items() if p != d and not p.startswith(d.rstrip("/") + "/")}
            files.update(adds)
            sha = hashlib.sha1(f"{repo.repo_id}{parent}{summary}{next(self._counter)}".encode()).hexdigest()
            repo.commits[sha] = files
            repo.branches[branch] = sha
            return sha

    # ------------------------------------------------------------------------------------------------ access
    def user(self, headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token not in USERS:
            raise HTTPError(401, "Invalid credentials in Authorization header",
                            headers={"X-Error-Message": "Invalid credentials in Authorization header"})
        return USERS[token]

    def readable(self, rtype: str, repo_id: str, user: str | None) -> Repo:
        repo = self.repos.get((rtype, repo_id))
        if repo is None or (repo.private and user != repo.owner):
            raise HTTPError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo

    def writable(self, rtype: str, repo_id: str, user: str | None) -> Repo:
        repo = self.readable(rtype, repo_id, user)
        if user != repo.owner:
            raise HTTPError(401 if user is None else 403, f"You don't have the rights to write to {repo_id}")
        return repo

    def sha(self, repo: Repo, rev: str) -> str:
        if rev in repo.branches:
            return repo.branches[rev]
        if SHA_RE.fullmatch(rev) and rev in repo.commits:
            return rev
        raise HTTPError(404, f"Invalid rev id: {rev}", "RevisionNotFound")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_POST(self) -> None:
            self._serve("POST")

        # -------------------------------------------------------------------------------------------- plumbing
        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    chunk = self.rfile.read(size + 2)[:size]
                    if not size:
                        return out
                    out += chunk
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                  ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            with hub.lock:
                hub.requests.append((self.command, self.path, status))

        def _json(self, obj: object, status: int = 200) -> None:
            self._send(status, json.dumps(obj).encode())

        def _serve(self, method: str) -> None:
            body = self._body()  # always drain it, or the next keep-alive request is garbage
            url = urlsplit(self.path)
            segs = [unquote(s) for s in url.path.split("/")[1:]]
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                user = hub.user(headers)
                with hub.lock:
                    self._route(method, segs, query, body, user, headers)
            except HTTPError as e:
                hdrs = dict(e.headers)
                if e.code:
                    hdrs["X-Error-Code"] = e.code
                hdrs.setdefault("X-Error-Message", e.message)
                self._send(e.status, json.dumps({"error": e.message}).encode(), hdrs)

        # -------------------------------------------------------------------------------------------- routes
        def _route(self, method: str, segs: list[str], query: dict[str, str], body: bytes, user: str | None,
                   headers: dict[str, str]) -> None:
            if segs[:1] == ["api"]:
                return self._api(method, segs[1:], query, body, user)
            # [datasets|spaces/]ns/name/resolve/rev/path...
            rtype = "model"
            if segs and segs[0] in ("datasets", "spaces"):
                rtype, segs = TYPES[segs[0]], segs[1:]
            if len(segs) >= 5 and segs[2] == "resolve" and method in ("GET", "HEAD"):
                return self._resolve(method, rtype, "/".join(segs[:2]), segs[3], "/".join(segs[4:]), user, headers)
            raise HTTPError(404, f"no route for {method} {self.path}")

        def _api(self, method: str, segs: list[str], query: dict[str, str], body: bytes, user: str | None) -> None:
            if segs == ["whoami-v2"]:
                if user is None:
                    raise HTTPError(401, "Invalid user token")
                return self._json({"type": "user", "name": user, "fullname": user.title(),
                                   "auth": {"type": "access_token",
                                            "accessToken": {"displayName": "test", "role": "write"}}})
            if segs == ["agent-harnesses"]:
                return self._json({"standardEnvVars": [], "harnesses": {}})
            if segs == ["validate-yaml"] and method == "POST":
                return self._validate_yaml(json.loads(body))
            if segs == ["repos", "create"] and method == "POST":
                return self._create(json.loads(body), user)
            if len(segs) < 3 or segs[0] not in TYPES:
                raise HTTPError(404, f"no route for {method} {self.path}")
            rtype, repo_id, rest = TYPES[segs[0]], "/".join(segs[1:3]), segs[3:]
            if method == "GET" and not rest:
                return self._info(rtype, repo_id, "main", user)
            if method == "GET" and rest[0] == "revision" and len(rest) == 2:
                return self._info(rtype, repo_id, rest[1], user)
            if method == "GET" and rest[0] == "tree" and len(rest) >= 2:
                return self._tree(rtype, repo_id, rest[1], "/".join(rest[2:]), query, user)
            if method == "GET" and rest == ["refs"]:
                repo = hub.readable(rtype, repo_id, user)
                return self._json({"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s}
                                                for b, s in repo.branches.items()], "tags": [], "converts": []})
            if method == "POST" and rest[0] == "preupload" and len(rest) == 2:
                return self._preupload(rtype, repo_id, rest[1], json.loads(body), user)
            if method == "POST" and rest[0] == "commit" and len(rest) == 2:
                return self._commit(rtype, repo_id, rest[1], body, query, user)
            if method == "POST" and rest[0] == "branch" and len(rest) >= 2:
                return self._branch(rtype, repo_id, "/".join(rest[1:]), json.loads(body or b"{}"), user)
            # Deliberately absent: xet-write-token, LFS batch; a client that asks for them fails loudly.
            raise HTTPError(404, f"no route for {method} {self.path}")

        def _validate_yaml(self, req: dict) -> None:
            text = req.get("content", "")
            m = re.match(r"^---\n(.*?)\n---", text, re.S)
            try:
                if m:
                    yaml.safe_load(m.group(1))
            except yaml.YAMLError as e:
                return self._json({"errors": [{"message": str(e)}]}, 400)
            return self._json({"errors": [], "warnings": []})

        def _create(self, req: dict, user: str | None) -> None:
            if user is None:
                raise HTTPError(401, "You must be authenticated to create a repo")
            rtype = req.get("type") or "model"
            owner = req.get("organization") or user
            repo_id = f"{owner}/{req['name']}"
            url = f"{hub.url}/{PREFIX[rtype]}{repo_id}"
            if (rtype, repo_id) in hub.repos:
                return self._json({"error": "You already created this repo", "url": url}, 409)
            if owner != user:
                raise HTTPError(403, f"You don't have the rights to create a repo under {owner}")
            hub.add_repo(repo_id, repo_type=rtype, private=req.get("visibility") == "private" or
                         bool(req.get("private")))
            return self._json({"url": url, "name": repo_id, "id": repo_id})

        def _info(self, rtype: str, repo_id: str, rev: str, user: str | None) -> None:
            repo = hub.readable(rtype, repo_id, user)
            sha = hub.sha(repo, rev)
            return self._json({"id": repo_id, "author": repo.owner, "sha": sha, "private": repo.private,
                               "gated": "auto" if repo.gated else False, "disabled": False,
                               "lastModified": "2025-01-01T00:00:00.000Z", "tags": [], "downloads": 0, "likes": 0,
                               "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])]})

        def _tree(self, rtype: str, repo_id: str, rev: str, prefix: str, query: dict[str, str],
                  user: str | None) -> None:
            repo = hub.readable(rtype, repo_id, user)
            files = repo.commits[hub.sha(repo, rev)]
            base = prefix.rstrip("/") + "/" if prefix else ""
            recursive = query.get("recursive", "false").lower() in ("true", "1")
            out, folders = [], set()
            for path in sorted(files):
                if not path.startswith(base):
                    continue
                rel = path[len(base):]
                if "/" in rel and not recursive:
                    folders.add(base + rel.split("/")[0])
                    continue
                if recursive:
                    parts = rel.split("/")[:-1]
                    folders.update(base + "/".join(parts[: i + 1]) for i in range(len(parts)))
                out.append({"type": "file", "path": path, "size": len(files[path]),
                            "oid": git_blob_sha1(files[path])})
            if prefix and not out and not folders:
                raise HTTPError(404, f"{prefix} not found", "EntryNotFound")
            out += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()}
                    for f in sorted(folders)]
            return self._json(out)

        def _preupload(self, rtype: str, repo_id: str, rev: str, req: dict, user: str | None) -> None:
            repo = hub.writable(rtype, repo_id, user)
            files = repo.commits[hub.sha(repo, rev)]
            return self._json({"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                 "oid": git_blob_sha1(files[f["path"]]) if f["path"] in files else None}
                for f in req["files"]]})

        def _commit(self, rtype: str, repo_id: str, rev: str, body: bytes, query: dict[str, str],
                    user: str | None) -> None:
            repo = hub.writable(rtype, repo_id, user)
            hub.sha(repo, rev)
            if query.get("create_pr"):
                raise HTTPError(400, "pull requests are not supported by the fake Hub")
            if rev not in repo.branches:
                raise HTTPError(400, "can only commit to a branch")
            summary, adds, deletes = "", {}, []
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    summary = value.get("summary", "")
                    if value.get("parentCommit") and value["parentCommit"] != repo.branches[rev]:
                        raise HTTPError(412, "parent commit is not the head of the branch")
                elif key == "file":
                    if value.get("encoding") != "base64":
                        raise HTTPError(400, "only base64 file content is supported")
                    adds[value["path"]] = base64.b64decode(value["content"])
                elif key in ("deletedFile", "deletedFolder"):
                    deletes.append(value["path"])
                else:  # lfsFile (or anything newer): the fake only ever asks for "regular" uploads
                    raise HTTPError(400, f"unsupported commit operation {key!r}: the fake Hub has no LFS/Xet")
            sha = hub.commit(repo, adds, rev, summary, tuple(deletes))
            return self._json({"success": True, "commitOid": sha,
                               "commitUrl": f"{hub.url}/{PREFIX[rtype]}{repo_id}/commit/{sha}"})

        def _branch(self, rtype: str, repo_id: str, branch: str, req: dict, user: str | None) -> None:
            repo = hub.writable(rtype, repo_id, user)
            if branch in repo.branches:
                raise HTTPError(409, f"Reference already exists: refs/heads/{branch}")
            start = hub.sha(repo, req.get("startingPoint") or "main")
            repo.branches[branch] = start
            return self._json({})

        def _resolve(self, method: str, rtype: str, repo_id: str, rev: str, path: str, user: str | None,
                     headers: dict[str, str]) -> None:
            repo = hub.readable(rtype, repo_id, user)
            sha = hub.sha(repo, rev)
            if repo.gated and user != repo.owner and user not in repo.granted:
                raise HTTPError(401 if user is None else 403, f"Access to {repo_id} is restricted", "GatedRepo")
            files = repo.commits[sha]
            if path not in files or path in repo.hidden:
                raise HTTPError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
            data = files[path]
            out = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"', "Accept-Ranges": "bytes"}
            m = re.fullmatch(r"bytes=(\d+)-", headers.get("range", ""))
            if m and method == "GET":  # resume of an interrupted download
                start = int(m.group(1))
                out["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                return self._send(206, data[start:], out, "application/octet-stream")
            return self._send(200, data, out, "application/octet-stream")

    return Handler
