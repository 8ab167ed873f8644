"""A Redis stream as a source: consumer-group reads, JSON records, acknowledged after use.

Each stream entry carries one JSON object in the field ``data`` (configurable): a flat
record as :func:`~mlgate.monitoring.stream.sources.decode_records` reads it (features,
optional ``request_id``, ``time``, ``label``, ``version``). Entries are read with
``XREADGROUP`` in a consumer group, so several monitors can share a stream, and
acknowledged with ``XACK`` only on :meth:`RedisStreamSource.commit`, after the monitor has
processed them: a monitor that dies in between gets them again. On start the consumer first
re-reads its own pending entries (delivered before, never acknowledged), then new ones.
An entry that is not a JSON object is rejected and acknowledged all the same: a poison
entry redelivered forever would stall the group.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis

from mlgate.errors import ConfigError, MonitoringError
from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.stream._decode import RecordKeys
from mlgate.monitoring.stream.sources import StreamBatch, decode_records

__all__ = ["RedisStreamSource"]

Wanted = Mapping[str, FeatureKind | None]
DEFAULT_GROUP = "mlgate-monitor"


class RedisStreamSource:
    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        wanted: Wanted,
        *,
        group: str = DEFAULT_GROUP,
        consumer: str = "monitor-1",
        field: str = "data",
        block_ms: int = 1000,
        start_id: str = "0",
        keys: RecordKeys = RecordKeys(),
    ) -> None:
        self._client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self._wanted = dict(wanted)
        self._field = field
        self._block_ms = block_ms
        self._keys = keys
        self._unacked: list[bytes | str] = []
        self._backlog = True  # first drain this consumer's pending entries
        try:
            client.xgroup_create(stream, group, id=start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise MonitoringError(
                    f"cannot create consumer group {group!r} on Redis stream {stream!r}: {exc}"
                ) from exc
        except redis.RedisError as exc:
            raise MonitoringError(
                f"Redis is not reachable for stream {stream!r} ({exc}); check the URL and "
                "that the server is running"
            ) from exc

    @classmethod
    def from_url(cls, url: str, wanted: Wanted, **options: Any) -> RedisStreamSource:
        """``redis://HOST:PORT/DB?stream=KEY[&group=G][&consumer=C][&field=F]``."""
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        stream = query.pop("stream", None)
        if not stream:
            raise ConfigError(
                f"the Redis source {url!r} names no stream: add ?stream=KEY to the URL"
            )
        for name in ("group", "consumer", "field"):
            if name in query:
                options.setdefault(name, query.pop(name))
        base = parts._replace(query="").geturl()
        try:
            client = redis.Redis.from_url(base)
        except ValueError as exc:
            raise ConfigError(
                f"the Redis source {url!r} is not a valid URL ({exc}); write it as "
                "redis://HOST:PORT/DB?stream=KEY (rediss:// for TLS, unix:///PATH?db=N)"
            ) from exc
        return cls(client, stream, wanted, **options)

    def read(self, max_records: int) -> StreamBatch:
        entries = self._read(max_records)
        records: list[Any] = []
        for entry, fields in entries:
            self._unacked.append(entry)
            records.append(self._record(fields))
        return decode_records(records, self._wanted, self._keys)

    def _read(self, max_records: int) -> list[tuple[Any, Mapping[Any, Any]]]:
        """This consumer's pending entries first (no waiting), then new ones (blocking)."""
        while True:
            backlog = self._backlog
            try:
                response = self._client.xreadgroup(
                    self.group,
                    self.consumer,
                    {self.stream: "0" if backlog else ">"},
                    count=max(1, max_records),
                    block=None if backlog else self._block_ms,
                )
            except redis.RedisError as exc:
                raise MonitoringError(
                    f"reading Redis stream {self.stream!r} failed: {exc}"
                ) from exc
            entries: list[tuple[Any, Mapping[Any, Any]]] = []
            streams: Any = response or []  # [[stream, [(id, {field: value}), ...]], ...]
            for _stream, items in streams:
                entries.extend(items)
            if entries or not backlog:
                return entries
            self._backlog = False  # pending entries drained: on to new ones

    def _record(self, fields: Mapping[Any, Any] | None) -> Any:
        if fields is None:  # a pending entry deleted from the stream meanwhile
            return None
        raw = fields.get(self._field)
        if raw is None:
            raw = fields.get(self._field.encode())
        if raw is None:
            return None  # rejected by decode_records as "not a JSON object"
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None

    def commit(self) -> None:
        if self._unacked:
            try:
                self._client.xack(self.stream, self.group, *self._unacked)
            except redis.RedisError as exc:
                raise MonitoringError(
                    f"cannot acknowledge {len(self._unacked)} entries of Redis stream "
                    f"{self.stream!r} in group {self.group!r}: {exc}; they will be delivered "
                    "again on restart. Check that the server is up and the key is still a stream"
                ) from exc
            self._unacked = []

    def close(self) -> None:
        self._client.close()
