"""A local fake of the GitHub, GitLab and Bitbucket Cloud REST APIs, as much as `ci` and `bump`
use: pull-request comments, commit statuses, opening a pull request, who the token is; and a
git remote over HTTPS's smart protocol (`serve_git`) that `bump` pushes its branch to.

An `http.server` on loopback, so the real client libraries (PyGithub, python-gitlab,
`requests`) make real HTTP calls. Each host is under its own prefix (`/github`,
`/gitlab/api/v4`, `/bitbucket/2.0`); a call with another token is refused with 401, and
`limit_next` answers the next calls with a rate limit.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

BOT = "mlops-bot"
"""The user the fake's token belongs to."""


@dataclass
class Comment:
    id: int
    body: str
    author: str
    reply: bool = False


@dataclass
class FakeHosts:
    token: str
    base: str = ""
    comments: dict[str, list[Comment]] = field(default_factory=dict)
    """By pull request: `github:acme/repo#7`."""
    statuses: list[dict[str, Any]] = field(default_factory=list)
    opened: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    limits: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    _next_id: int = 100

    def limit_next(self, count: int, status: int, headers: dict[str, str], body: str = "") -> None:
        self.limits += [(status, headers, body)] * count

    def add_comment(self, key: str, body: str, author: str, reply: bool = False) -> Comment:
        self._next_id += 1
        comment = Comment(self._next_id, body, author, reply)
        self.comments.setdefault(key, []).append(comment)
        return comment

    def statuses_of(self, host: str, commit: str) -> list[dict[str, Any]]:
        return [s for s in self.statuses if s["host"] == host and s["commit"] == commit]


def serve(token: str) -> Iterator[FakeHosts]:
    """Run the fake until the generator is closed (a pytest fixture's body)."""
    state = FakeHosts(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _handler(state: FakeHosts) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            state.calls.append((self.command, self.path, status))

        def _route(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length) or b"null") if length else None
            if state.limits:
                status, headers, text = state.limits.pop(0)
                self._reply(status, {"message": text or "rate limited"}, headers)
                return
            raw = urlsplit(self.path).path
            given = self.headers.get("Authorization", "") or self.headers.get("PRIVATE-TOKEN", "")
            state.authorizations.append(given)
            if state.token not in given.split(" ")[-1:]:
                self._reply(401, {"message": "Bad credentials"})
                return
            for prefix, routes in (
                ("/github", _GITHUB),
                ("/gitlab/api/v4", _GITLAB),
                ("/bitbucket/2.0", _BITBUCKET),
            ):
                if not raw.startswith(prefix + "/"):
                    continue
                path = raw.removeprefix(prefix)
                for method, pattern, action in routes:
                    match = re.fullmatch(pattern, path)
                    if method == self.command and match:
                        groups = [unquote(g) for g in match.groups()]
                        status, payload = action(state, f"{state.base}{prefix}", groups, data)
                        self._reply(status, payload)
                        return
            self._reply(404, {"message": f"no route {self.command} {raw}"})

        do_GET = do_POST = do_PUT = do_PATCH = _route

    return Handler


# GitHub --------------------------------------------------------------------------------------


def _gh_comment(base: str, repo: str, c: Comment) -> dict[str, Any]:
    url = f"{base}/repos/{repo}/issues/comments/{c.id}"
    return {"id": c.id, "body": c.body, "user": {"login": c.author}, "url": url}


def _gh_find(state: FakeHosts, repo: str, comment_id: str) -> Comment:
    prefix = f"github:{repo}#"
    return next(
        c
        for key, comments in state.comments.items()
        if key.startswith(prefix)
        for c in comments
        if c.id == int(comment_id)
    )


def _gh_user(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    return 200, {"login": BOT, "id": 1, "url": f"{base}/user"}


def _gh_list(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    repo, number = g
    return 200, [
        _gh_comment(base, repo, c) for c in state.comments.get(f"github:{repo}#{number}", [])
    ]


def _gh_post(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    repo, number = g
    return 201, _gh_comment(
        base, repo, state.add_comment(f"github:{repo}#{number}", data["body"], BOT)
    )


def _gh_edit(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    repo, comment_id = g
    comment = _gh_find(state, repo, comment_id)
    if comment.author != BOT:
        return 403, {"message": "Must have admin rights to Repository."}
    comment.body = data["body"]
    return 200, _gh_comment(base, repo, comment)


def _gh_commit(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    repo, sha = g
    return 200, {"sha": sha, "url": f"{base}/repos/{repo}/commits/{sha}"}


def _gh_status(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    _repo, sha = g
    state.statuses.append({"host": "github", "commit": sha, **data})
    return 201, {"id": len(state.statuses), "state": data["state"], "context": data["context"]}


def _gh_pull(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    (repo,) = g
    state.opened.append({"host": "github", **data})
    number = len(state.opened)
    return 201, {"number": number, "html_url": f"https://github.example/{repo}/pull/{number}"}


_REPO = r"/repos/([^/]+/[^/]+)"
_GITHUB = (
    ("GET", r"/user", _gh_user),
    ("GET", _REPO + r"/issues/(\d+)/comments", _gh_list),
    ("POST", _REPO + r"/issues/(\d+)/comments", _gh_post),
    ("PATCH", _REPO + r"/issues/comments/(\d+)", _gh_edit),
    ("GET", _REPO + r"/commits/([0-9a-f]{40})", _gh_commit),
    ("POST", _REPO + r"/statuses/([0-9a-f]{40})", _gh_status),
    ("POST", _REPO + r"/pulls", _gh_pull),
)


# GitLab --------------------------------------------------------------------------------------

_GL_USERS = {BOT: 1, "mallory": 666}


def _gl_note(c: Comment) -> dict[str, Any]:
    return {
        "id": c.id,
        "body": c.body,
        "system": False,
        "author": {"id": _GL_USERS.get(c.author, 2), "username": c.author},
    }


def _gl_user(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    return 200, {"id": 1, "username": BOT}


def _gl_list(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    project, iid = g
    return 200, [_gl_note(c) for c in state.comments.get(f"gitlab:{project}!{iid}", [])]


def _gl_post(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    project, iid = g
    return 201, _gl_note(state.add_comment(f"gitlab:{project}!{iid}", data["body"], BOT))


def _gl_edit(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    project, iid, note_id = g
    note = next(c for c in state.comments[f"gitlab:{project}!{iid}"] if c.id == int(note_id))
    if note.author != BOT:
        return 403, {"message": "403 Forbidden"}
    note.body = data["body"]
    return 200, _gl_note(note)


def _gl_status(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    _project, sha = g
    state.statuses.append({"host": "gitlab", "commit": sha, **data})
    return 201, {"id": len(state.statuses), "status": data["state"], "name": data["name"]}


def _gl_open(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    (project,) = g
    state.opened.append({"host": "gitlab", **data})
    iid = len(state.opened)
    return 201, {"iid": iid, "web_url": f"https://gitlab.example/{project}/-/merge_requests/{iid}"}


_PROJECT = r"/projects/([^/]+)"
_GITLAB = (
    ("GET", r"/user", _gl_user),
    ("GET", _PROJECT + r"/merge_requests/(\d+)/notes", _gl_list),
    ("POST", _PROJECT + r"/merge_requests/(\d+)/notes", _gl_post),
    ("PUT", _PROJECT + r"/merge_requests/(\d+)/notes/(\d+)", _gl_edit),
    ("POST", _PROJECT + r"/statuses/([0-9a-f]{40})", _gl_status),
    ("POST", _PROJECT + r"/merge_requests", _gl_open),
)


# Bitbucket Cloud -----------------------------------------------------------------------------

_BB_UUIDS = {BOT: "{bot-uuid}", "mallory": "{mallory-uuid}"}


def _bb_comment(c: Comment) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": c.id,
        "content": {"raw": c.body},
        "user": {"uuid": _BB_UUIDS.get(c.author, "{someone}")},
        "deleted": False,
    }
    if c.reply:
        found["parent"] = {"id": 1}
    return found


def _bb_user(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    return 200, {"uuid": _BB_UUIDS[BOT], "display_name": BOT}


def _bb_list(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    repo, number = g
    values = [_bb_comment(c) for c in state.comments.get(f"bitbucket:{repo}#{number}", [])]
    return 200, {"values": values, "pagelen": 100}


def _bb_post(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    repo, number = g
    body = data["content"]["raw"]
    return 201, _bb_comment(state.add_comment(f"bitbucket:{repo}#{number}", body, BOT))


def _bb_edit(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    repo, number, comment_id = g
    comment = next(
        c for c in state.comments[f"bitbucket:{repo}#{number}"] if c.id == int(comment_id)
    )
    if comment.author != BOT:
        return 403, {"type": "error", "error": {"message": "not yours"}}
    comment.body = data["content"]["raw"]
    return 200, _bb_comment(comment)


def _bb_status(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    _repo, sha = g
    state.statuses.append({"host": "bitbucket", "commit": sha, **data})
    return 201, {"key": data["key"], "state": data["state"]}


def _bb_open(state: FakeHosts, base: str, g: list[str], data: Any) -> tuple[int, Any]:
    (repo,) = g
    state.opened.append({"host": "bitbucket", **data})
    number = len(state.opened)
    href = f"https://bitbucket.example/{repo}/pull-requests/{number}"
    return 201, {"id": number, "links": {"html": {"href": href}}}


_BB_REPO = r"/repositories/([^/]+/[^/]+)"
_BITBUCKET = (
    ("GET", r"/user", _bb_user),
    ("GET", _BB_REPO + r"/pullrequests/(\d+)/comments", _bb_list),
    ("POST", _BB_REPO + r"/pullrequests/(\d+)/comments", _bb_post),
    ("PUT", _BB_REPO + r"/pullrequests/(\d+)/comments/(\d+)", _bb_edit),
    ("POST", _BB_REPO + r"/commit/([0-9a-f]{40})/statuses/build", _bb_status),
    ("POST", _BB_REPO + r"/pullrequests", _bb_open),
)


# A git remote over smart HTTP ------------------------------------------------------------------


@dataclass
class GitServer:
    """Bare repositories under `root`, served by `git http-backend` to callers with the
    credentials: a git host's HTTPS remote, as `bump` pushes to it."""

    root: str
    credentials: str
    url: str = ""
    authorizations: list[str] = field(default_factory=list)


def serve_git(root: str, credentials: str) -> Iterator[GitServer]:
    """Run the git server until the generator is closed (a pytest fixture's body)."""
    state = GitServer(root, credentials)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _git_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _git_handler(state: GitServer) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(state.credentials.encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _route(self) -> None:
            given = self.headers.get("Authorization", "")
            state.authorizations.append(given)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if given != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            parts = urlsplit(self.path)
            env = {
                "PATH": os.environ.get("PATH", ""),
                "GIT_PROJECT_ROOT": state.root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "REMOTE_USER": BOT,
                "REMOTE_ADDR": "127.0.0.1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": unquote(parts.path),
                "QUERY_STRING": parts.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            done = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            )
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            headers = [line.split(": ", 1) for line in head.decode().split("\r\n") if line]
            status = next((int(v.split()[0]) for k, v in headers if k == "Status"), 200)
            self.send_response(status)
            for name, value in headers:
                if name != "Status":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _route

    return Handler
