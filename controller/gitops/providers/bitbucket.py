"""Bitbucket Cloud's REST API 2.0: pull-request comments, build statuses, opening a pull request.

A small `requests` client rather than atlassian-python-api: the controller needs five
endpoints; that library's Bitbucket Cloud module is a thin layer over the same calls, does not
retry rate limits, and would add five packages (deprecated, oauthlib, requests-oauthlib,
beautifulsoup4, soupsieve) to what every build installs. `requests` is already there for
PyGithub and python-gitlab.
"""

from __future__ import annotations

from typing import Any

import requests

from controller.gitops.providers import (
    CommitStatus,
    HostError,
    NewPullRequest,
    OpenedPullRequest,
    State,
)
from controller.gitops.providers.ratelimit import RateLimited, RetryingSession

API_URL = "https://api.bitbucket.org/2.0"
STATES = {State.SUCCESS: "SUCCESSFUL", State.FAILURE: "FAILED"}
NOT_ALLOWED = (403, 404)
MAX_KEY = 40
"""Bitbucket's limit on a build status key."""


class Bitbucket:
    def __init__(
        self,
        repository: str,
        token: str,
        api_url: str = API_URL,
        session: requests.Session | None = None,
        target_url: str = "",
    ) -> None:
        self._base = f"{api_url.rstrip('/')}/repositories/{repository}"
        self._api = api_url.rstrip("/")
        self._session = session or RetryingSession()
        # An API token or app password is `user:secret` (basic auth); an access token, bearer.
        user, sep, secret = token.partition(":")
        if sep:
            self._session.auth = (user, secret)
        else:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._target_url = target_url or f"https://bitbucket.org/{repository}"
        self._token = token

    def _call(self, method: str, url: str, json: Any = None, missing_ok: bool = False) -> Any:
        try:
            response = self._session.request(method, url, json=json)
        except RateLimited as exc:
            raise HostError(f"Bitbucket: {method}: {exc}") from None
        except requests.RequestException as exc:
            # Its text may hold the URL with its query; the type says enough.
            raise HostError(f"Bitbucket: {method} failed: {type(exc).__name__}") from None
        if missing_ok and response.status_code in NOT_ALLOWED:
            return None
        if response.status_code >= 400:
            text = response.text[:300].replace(self._token, "***")
            raise HostError(f"Bitbucket: {method} {response.status_code}: {text}")
        return response.json() if response.content else None

    def _me(self) -> str | None:
        """Our account's uuid; None for a token that may not read it (a repository access
        token may not). Anything else fails: a guess would post a second comment."""
        try:
            return str(self._call("GET", f"{self._api}/user", missing_ok=True)["uuid"])
        except TypeError:
            return None

    def upsert_plan_comment(self, number: str, body: str, marker: str) -> bool:
        comments = f"{self._base}/pullrequests/{number}/comments"
        me = self._me()
        url: str | None = f"{comments}?pagelen=100"
        while url and me:
            page = self._call("GET", url)
            for comment in page.get("values", ()):
                if (
                    marker in comment.get("content", {}).get("raw", "")
                    and not comment.get("parent")
                    and not comment.get("deleted")
                    and not comment.get("inline")
                    and comment.get("user", {}).get("uuid") == me
                ):
                    self._call("PUT", f"{comments}/{comment['id']}", {"content": {"raw": body}})
                    return True
            url = page.get("next")
        self._call("POST", comments, {"content": {"raw": body}})
        return False

    def set_status(self, commit: str, status: CommitStatus) -> None:
        self._call(
            "POST",
            f"{self._base}/commit/{commit}/statuses/build",
            {
                # Keys are at most 40 characters: a long stage name keeps its end.
                "key": status.context[-MAX_KEY:],
                "name": status.context,
                "state": STATES[status.state],
                "description": status.description[:255],
                "url": self._target_url,
            },
        )

    def open_pull_request(self, request: NewPullRequest) -> OpenedPullRequest:
        opened = self._call(
            "POST",
            f"{self._base}/pullrequests",
            {
                "title": request.title,
                "description": request.body,
                "source": {"branch": {"name": request.head}},
                "destination": {"branch": {"name": request.base}},
            },
        )
        return OpenedPullRequest(str(opened["id"]), str(opened["links"]["html"]["href"]))
