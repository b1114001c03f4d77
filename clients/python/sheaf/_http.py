"""
_http.py - the transport of the sheaf client: one request with retries,
JSON in and out, streamed bodies both ways, and the API's error object
turned into SheafError. Standard library only (urllib, http.client).
"""

from __future__ import annotations

import json
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any, Dict, Iterable, Mapping, Optional, Union

USER_AGENT = "sheaf-python/0.1.0"
ATTEMPTS = 4            # tries of a request that is safe to repeat
BACKOFF_S = 0.5         # the first pause; doubles, with +-25 % jitter
BACKOFF_MAX_S = 8.0
RETRY_AFTER_MAX_S = 30.0
RETRY_STATUSES = (429, 502, 503, 504)
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class SheafError(Exception):
    """An error the service answered (or a failure to reach it).

    Attributes:
        status:  the HTTP status, or 0 when no reply arrived
        code:    the API's error code ("invalid_spec", "not_found", ...);
                 "unreachable" when the service could not be reached
        message: the API's words
        path:    the field at fault ("steps[1].where"), "" for the body
    """

    def __init__(self, status: int, code: str, message: str,
                 path: str = "") -> None:
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        where = f" at {path}" if path else ""
        tail = f" (HTTP {status})" if status else ""
        super().__init__(f"{code}{where}: {message}{tail}")

    @property
    def not_implemented(self) -> bool:
        """True when the service does not serve this route yet (501)."""
        return self.status == 501 or self.code == "not_implemented"


class SheafConnectionError(SheafError):
    """The service could not be reached, or the connection broke."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "unreachable", message)


class JobFailedError(SheafError):
    """The job ended failed or cancelled, so it has no result. `job` is
    the job object (a dict); `code` is "job_failed" or "job_cancelled"."""

    def __init__(self, job: Mapping[str, Any]) -> None:
        self.job = dict(job)
        status = job.get("status", "?")
        err = job.get("error")
        if isinstance(err, dict):
            err = err.get("message") or json.dumps(err)
        super().__init__(0, "job_" + str(status),
                         f"job {job.get('id')} {status}"
                         + (f": {err}" if err else ""))


class IntegrityError(SheafError):
    """A download does not match the manifest (or the announced length)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "checksum_mismatch", message)


def error_from_body(status: int, raw: bytes) -> SheafError:
    """The SheafError of a non-2xx reply: the API's error object when the
    body holds one, else the status and a piece of the body."""
    try:
        err = json.loads(raw.decode("utf-8"))["error"]
        return SheafError(status, str(err.get("code", "http_error")),
                          str(err.get("message", "")),
                          str(err.get("path", "") or ""))
    except (ValueError, KeyError, TypeError, AttributeError,
            UnicodeDecodeError):
        text = raw[:200].decode("utf-8", "replace").strip()
        return SheafError(status, "http_error", text or f"HTTP {status}")


class Transport:
    """Speaks HTTP to one sheaf service: base URL, bearer token, retries."""

    def __init__(self, url: str, token: Optional[str],
                 timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"sheaf URL {url!r} must be http:// or "
                             f"https://host[:port]")
        if token is not None and ("\r" in token or "\n" in token):
            raise ValueError("the token holds a line break")
        self.url = url.rstrip("/")
        self.token = token or None
        self.timeout = timeout
        # Never send a loopback request through a proxy of the environment.
        handlers = []
        if parts.hostname in LOOPBACK or parts.hostname == "::1":
            handlers.append(urllib.request.ProxyHandler({}))
        self.opener = urllib.request.build_opener(*handlers)

    def headers(self, extra: Optional[Mapping[str, str]] = None,
                accept: str = "application/json") -> Dict[str, str]:
        h = {"User-Agent": USER_AGENT, "Accept": accept}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(extra or {})
        return h

    def open(self, method: str, path: str, data: Union[bytes, IO[bytes],
                                                       Iterable[bytes],
                                                       None] = None,
             headers: Optional[Mapping[str, str]] = None,
             timeout: Optional[float] = None, retry: bool = False,
             ok: Iterable[int] = ()) -> Any:
        """Send one request and return the open response (an
        http.client.HTTPResponse; the caller reads and closes it) when its
        status is 2xx or in 'ok'. Other statuses raise SheafError. With
        'retry', a broken connection, 429 and 502-504 are tried again with
        backoff (Retry-After honoured); a refused connection is always
        retried, since nothing reached the server. 'data' that is a file
        must not be retried unless seekable (the caller rewinds)."""
        req_url = self.url + path
        last: Optional[BaseException] = None
        for attempt in range(1, ATTEMPTS + 1):
            req = urllib.request.Request(req_url, data=data, method=method,
                                         headers=dict(headers or {}))
            wait_s = None
            try:
                resp = self.opener.open(
                    req, timeout=self.timeout if timeout is None else timeout)
                return resp
            except urllib.error.HTTPError as e:
                try:
                    raw = e.read()
                finally:
                    e.close()
                if e.code in ok:
                    return _Buffered(e.code, e.headers, raw)
                last = error_from_body(e.code, raw)
                if not (retry and e.code in RETRY_STATUSES):
                    raise last from None
                wait_s = _retry_after(e.headers.get("Retry-After"))
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                refused = isinstance(reason, ConnectionRefusedError)
                last = SheafConnectionError(
                    f"{method} {req_url}: {reason}")
                if not (retry or refused):
                    raise last from None
            if attempt == ATTEMPTS:
                break
            pause = min(BACKOFF_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
            pause *= 0.75 + random.random() / 2
            if wait_s is not None:
                pause = max(pause, wait_s)
            time.sleep(pause)
            if hasattr(data, "seek"):
                data.seek(0)  # type: ignore[union-attr]
        assert last is not None
        raise last

    def json(self, method: str, path: str, body: Any = None,
             headers: Optional[Mapping[str, str]] = None,
             timeout: Optional[float] = None, retry: Optional[bool] = None,
             ok: Iterable[int] = ()) -> Any:
        """A JSON request: 'body' (any JSON value, or None) out, the parsed
        reply (None when empty) back. GETs are retried unless told not."""
        h = self.headers(headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            h["Content-Type"] = "application/json"
        if retry is None:
            retry = method == "GET"
        with self.open(method, path, data, h, timeout, retry, ok) as resp:
            raw = resp.read()
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise SheafError(getattr(resp, "status", 0), "bad_reply",
                             f"{method} {path}: the reply is not JSON; is "
                             f"{self.url} a sheaf service?") from None


class _Buffered:
    """A reply already read (an HTTPError the caller accepts), shaped like
    an HTTPResponse for the few things the client uses."""

    def __init__(self, status: int, headers: Any, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            out, self._raw = self._raw, b""
        else:
            out, self._raw = self._raw[:n], self._raw[n:]
        return out

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Buffered":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds of a Retry-After header (an HTTP date counts as none)."""
    try:
        return min(max(float(value or ""), 0.0), RETRY_AFTER_MAX_S)
    except ValueError:
        return None


def is_timeout(e: BaseException) -> bool:
    """True when 'e' is a socket read timing out."""
    return isinstance(e, (socket.timeout, TimeoutError)) or (
        isinstance(e, urllib.error.URLError)
        and isinstance(e.reason, (socket.timeout, TimeoutError)))
