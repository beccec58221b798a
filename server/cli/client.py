"""The CLI's client of the server's API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx


class ApiError(Exception):
    """The server refused a request or could not be reached; ``exit_code`` says which."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ApiClient:
    def __init__(self, url: str, token: str, transport: httpx.BaseTransport | None = None) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, connect=5.0),
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._json(self._send("GET", path, params=params or None))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self._send("POST", path, json=body))

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self._send("PUT", path, json=body))

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self._send("PATCH", path, json=body))

    def delete(self, path: str, **params: Any) -> None:
        self._send("DELETE", path, params=params or None)

    def raw(self, path: str) -> bytes:
        return self._send("GET", path).content

    def text(self, path: str, **params: Any) -> str:
        return self._send("GET", path, params=params or None).text

    def events(self, path: str) -> Iterator[tuple[str, str]]:
        """Server-sent events as ``(event, data)`` pairs, until the server closes."""
        try:
            with self.http.stream(
                "GET", path, timeout=httpx.Timeout(None, connect=5.0)
            ) as response:
                self._check(response)
                event, data = "message", list[str]()
                for line in response.iter_lines():
                    if not line:
                        if data:
                            yield event, "\n".join(data)
                        event, data = "message", []
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach the server at {self.http.base_url}: {exc}", 3) from exc

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach the server at {self.http.base_url}: {exc}", 3) from exc
        self._check(response)
        return response

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if not response.is_error:
            return
        response.read()
        try:
            message = response.json().get("error", response.text)
        except (json.JSONDecodeError, AttributeError):
            message = response.text
        raise ApiError(
            f"{message} (HTTP {response.status_code})", 2 if response.status_code < 500 else 3
        )

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        return response.json()
