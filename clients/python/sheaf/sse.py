"""
sse.py - a parser of server-sent events (the text/event-stream format of
the WHATWG HTML standard), as GET /v1/jobs/{id}/events sends them: fields
"id", "event", "data" (several data lines join with a newline) and
"retry"; a line starting with ':' is a comment (a keep-alive); a blank
line ends an event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, IO, Iterator, Optional


@dataclass
class Event:
    """One server-sent event."""

    event: str = "message"   #: its type ("progress", "state", ...)
    data: str = ""           #: its data, data lines joined by newlines
    id: Optional[str] = None  #: the last id the stream has set, if any
    retry_ms: Optional[int] = None  #: a reconnection delay it asked for

    def json(self) -> Any:
        """The data parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.data)
        except ValueError:
            return None


def iter_events(stream: IO[bytes]) -> Iterator[Event]:
    """Yield the events of 'stream' (a binary file: an HTTP response) as
    they complete. A last event not ended by a blank line is dropped, as
    the standard says. The id carries over from event to event."""
    last_id: Optional[str] = None
    kind, data, retry, has_data = "message", [], None, False
    first = True
    while True:
        raw = stream.readline()
        if not raw:
            return
        line = raw.decode("utf-8", "replace")
        if first:
            line = line.lstrip("\ufeff")
            first = False
        line = line.rstrip("\r\n")
        if line == "":
            if has_data:
                yield Event(kind, "\n".join(data), last_id, retry)
            kind, data, retry, has_data = "message", [], None, False
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "event":
            kind = value or "message"
        elif field == "data":
            data.append(value)
            has_data = True
        elif field == "id":
            if "\0" not in value:
                last_id = value
        elif field == "retry" and value.isdigit():
            retry = int(value)
