"""The loop's durable inbox: each record once, whichever source delivered it, however often.

Sources deliver at least once (a Redis consumer that dies before ``XACK`` gets its entries
again, a replayed file repeats itself, an HTTP client retries); the inbox makes that
*effectively once* by keying every row on ``(loop, record id)`` (table ``loop_records``).
The loop that reads the inbox names it; no loop file needs to exist before records come.

Record ids. A record's id is its ``request_id``; a record without one gets ``sha256:`` and
the hash of the canonical JSON (sorted keys, integral floats as integers) of its
non-missing feature values, so exact duplicates collapse. Ids are at most 128 characters.

Writes. A batch is written in ONE transaction (at most 10,000 records each: larger calls
are split, and each part committed on its own, so a crash loses nothing committed). Rows
are inserted with ``ON CONFLICT DO NOTHING``; on PostgreSQL the writers of one loop also
take a transaction advisory lock, so sequence numbers are committed in order and a reader
of :meth:`Inbox.after` never skips a row that commits late. A record already stored is a
*duplicate*: counted, never a second row; the first write's features win.

Labels. A label for a known record is set if it has none; the same label again is a
duplicate; a DIFFERENT label for a labelled record is *rejected* with a reason and never
overwrites (a label flip is what poisoning looks like). A label for an unknown id waits in
a label-only row (features null) and is joined when its record arrives, in either order
ending as one row holding both; the joined row takes a new sequence number, because the
record only now becomes readable. A label that never arrives leaves its record unlabelled:
never trained on, and counted by :meth:`Inbox.counts`. A label set on a record already
read through :meth:`Inbox.after` does not make it reappear there: read labels in the order
they were stored with :meth:`Inbox.labelled_since`, or look them up with :meth:`label_of`.

Label times. Every write that stores a label sets ``labelled_at`` (the inbox clock, in the
same fixed-width text as event times); a joined row takes the join's time, as it takes a
new sequence number, so a label that waited for its record is not behind a reader's
watermark when it becomes readable. :meth:`Inbox.labelled_since` pages through labelled
records by ``(labelled_at, seq)``.

Quarantine. A training batch that fails its data check is quarantined: its rows get
``quarantined_by`` (the run) and :meth:`Inbox.labelled` and :meth:`Inbox.first_labelled`
never return them again. They stay in :meth:`Inbox.labelled_since`, because the champion
served them and its errors on them count.

Values. ``event_time`` is the record's ``time`` if given, else the ingestion time (fixed-
width RFC 3339 UTC text, so times compare as text). Values must be JSON: NaN and infinities
in features are stored as null (JSON has none), so the data-quality checks see them as
missing; a label that is null or NaN is no label; a label must be a string, number or bool.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from mlgate.errors import InvalidNameError, LoopConfigError
from mlgate.ledger.events import format_time
from mlgate.loop import _inbox_query as _query
from mlgate.loop._inbox_plan import REASONS_KEPT, IngestResult, fill_records, plan_batch
from mlgate.loop._inbox_read import InboxCounts, InboxSlice, frame_of, slice_of
from mlgate.loop._inbox_write import parts, write_rows
from mlgate.loop.frame import TrainingFrame
from mlgate.loop.window import WindowPolicy
from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.stream import RecordKeys, StreamBatch, decode_records
from mlgate.registry.records import check_model_name
from mlgate.store import Store
from mlgate.store.schema import loop_records

__all__ = ["MAX_BATCH", "IngestResult", "Inbox", "InboxCounts", "InboxSlice"]

MAX_BATCH = 10_000  # records per transaction
_T = loop_records.c


class Inbox:
    def __init__(
        self,
        store: Store,
        loop: str,
        *,
        clock: Callable[[], datetime],
        keys: RecordKeys = RecordKeys(),
    ) -> None:
        try:
            check_model_name(loop)
        except InvalidNameError:
            raise LoopConfigError(
                f"loop name {loop!r} is not allowed: use 1-128 letters, digits, '.', '_' or "
                "'-', starting with a letter or digit"
            ) from None
        self.store = store
        self.loop = loop
        self._clock = clock
        self._keys = keys

    # -- writing ----------------------------------------------------------------------

    def ingest(
        self, records: Sequence[object], wanted: Mapping[str, FeatureKind | None]
    ) -> IngestResult:
        """Flat JSON records (features, ``request_id``, ``time``, ``label``) into the inbox."""
        total = IngestResult()
        columns = [name for name in wanted if name not in self._keys.reserved()]
        for start in range(0, len(records), MAX_BATCH):
            token = f"\x00{secrets.token_hex(8)}:"  # no request_id can start with it
            now = self._clock().timestamp()
            part = records[start : start + MAX_BATCH]
            named = fill_records(part, self._keys, columns, now, token)
            total += self._ingest(decode_records(named, wanted, self._keys), token)
        return total

    def ingest_batch(self, batch: StreamBatch) -> IngestResult:
        """A batch from any :class:`~mlgate.monitoring.stream.StreamSource`."""
        return self._ingest(batch, None)

    def _ingest(self, batch: StreamBatch, placeholder: str | None) -> IngestResult:
        now = format_time(self._clock())
        result = IngestResult(rejected=batch.rejected, reasons=batch.reasons[:REASONS_KEPT])
        rows, refused = plan_batch(batch, now, placeholder)
        result += refused
        items = list(rows.items())
        for start in range(0, len(items), MAX_BATCH):
            part = dict(items[start : start + MAX_BATCH])
            with self.store.write() as conn:
                result += write_rows(conn, self.loop, part, now, self._clock)
        return result

    def quarantine(self, seqs: Sequence[int], run_id: int) -> int:
        """Set these rows of this loop aside as quarantined by ``run_id``; rows updated.

        A row already quarantined keeps the run that quarantined it first (and is not
        counted); sequence numbers of other loops or of no row are ignored.
        """
        ids = sorted({int(seq) for seq in seqs})
        updated = 0
        with self.store.write() as conn:
            for part in parts(ids):
                statement = (
                    loop_records.update()
                    .where(_T.loop == self.loop, _T.seq.in_(part), _T.quarantined_by.is_(None))
                    .values(quarantined_by=int(run_id))
                )
                updated += conn.execute(statement).rowcount
        return updated

    # -- reading records --------------------------------------------------------------

    def after(self, seq: int, limit: int, features: Sequence[str] = ()) -> InboxSlice:
        """Records with features and a sequence number above ``seq``, ascending, <= limit.

        Every column in ``features`` is in the slice (all NaN where no row has it), then
        any other column a row has.
        """
        query = _query.records(self.loop).where(_T.seq > seq).order_by(_T.seq).limit(max(0, limit))
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        return slice_of(rows, features, int(rows[-1].seq) if rows else seq)

    def tail(self) -> int:
        """The highest sequence number of this loop's records (0 when it has none).

        Labels still waiting for their record are left out: ``after(tail())`` returns the
        records that arrive from now on, a waiting label's record included (SQLite may give
        a joined row the sequence number its label-only row had, never one at or below a
        record's)."""
        query = sa.select(sa.func.max(_T.seq)).where(_T.loop == self.loop, _T.features.is_not(None))
        with self.store.read() as conn:
            return int(conn.execute(query).scalar() or 0)

    # -- reading labels ---------------------------------------------------------------

    def labelled_since(
        self,
        after: tuple[str, int] | None,
        features: Sequence[str],
        *,
        limit: int,
        settle_s: float = 1.0,
    ) -> tuple[InboxSlice, tuple[str, int] | None]:
        """Labelled records in the order their labels were stored, after a watermark.

        Rows come ordered by ``(labelled_at, seq)``, strictly after ``after`` (None: from
        the first), at most ``limit``, with the columns ``features`` (all NaN where no row
        has one); the new watermark is the last row's ``(labelled_at, seq)``, or ``after``
        when nothing is new. Quarantined rows are included: they were served.

        Only labels stored at least ``settle_s`` ago are read. A writer reads its
        ``labelled_at`` from its clock before it commits, so a transaction of another
        process may commit a label time older than one already read; moving the watermark
        past it would skip that label for good. Holding back the last ``settle_s`` seconds
        lets such a transaction commit first; it assumes writers commit within ``settle_s``
        of their label time and that the writers' clocks agree to within it.
        """
        if not settle_s >= 0:
            raise ValueError(f"settle_s must be 0 or more seconds, got {settle_s}")
        cutoff = format_time(self._clock() - timedelta(seconds=settle_s))
        query = _query.labels_after(self.loop, after, cutoff, limit)
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        watermark = (str(rows[-1].labelled_at), int(rows[-1].seq)) if rows else after
        found = slice_of(rows, features, 0 if watermark is None else watermark[1], others=False)
        return found, watermark

    def label_watermark(self) -> tuple[str, int] | None:
        """``(labelled_at, seq)`` of the newest labelled record (None when none is).

        Where a monitor starts :meth:`labelled_since` so that history is not replayed.
        """
        query = _query.label_watermark(self.loop)
        with self.store.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else (str(row.labelled_at), int(row.seq))

    def labelled(
        self,
        policy: WindowPolicy,
        features: Sequence[str],
        *,
        columns: Sequence[str] = (),
        now: datetime | None = None,
        seed: int = 0,
        after_seq: int = 0,
    ) -> TrainingFrame:
        """The labelled rows the policy chooses, oldest first, as a :class:`TrainingFrame`.

        Only the chosen rows are loaded: ``recent`` reads the newest N, ``seconds`` the
        window's; with a reference sample, (sequence, time) pairs are read to choose on.
        Quarantined rows are never chosen. ``after_seq`` keeps only records stored after
        that sequence number (a run that should learn only the world after a detected
        change); a policy with a reference sample ignores it, since it asks for older rows.
        """
        moment = (self._clock() if now is None else now).timestamp()
        with self.store.read() as conn:
            rows = _query.window_rows(conn, self.loop, policy, moment, seed, after_seq)
        return frame_of(rows, features, columns)

    def first_labelled(
        self, features: Sequence[str], n: int, *, columns: Sequence[str] = ()
    ) -> TrainingFrame:
        """The oldest ``n`` labelled records not quarantined: the world as the loop first saw it."""
        query = _query.trainable(self.loop).order_by(_T.seq).limit(max(0, n))
        with self.store.read() as conn:
            rows = list(conn.execute(query))
        return frame_of(rows, features, columns)

    def counts(self) -> InboxCounts:
        has_features = _T.features.is_not(None)
        query = sa.select(
            sa.func.count().filter(has_features),
            sa.func.count().filter(has_features, _T.label.is_not(None)),
            sa.func.count().filter(_T.features.is_(None)),
            sa.func.count().filter(has_features, _T.quarantined_by.is_not(None)),
        ).where(_T.loop == self.loop)
        with self.store.read() as conn:
            records, labelled, waiting, quarantined = conn.execute(query).one()
        return InboxCounts(int(records), int(labelled), int(waiting), int(quarantined))

    def label_of(self, record_ids: Sequence[str]) -> dict[str, object]:
        """The known labels of these ids (records or labels still waiting for them)."""
        found: dict[str, object] = {}
        query = sa.select(_T.record_id, _T.label).where(_T.loop == self.loop, _T.label.is_not(None))
        with self.store.read() as conn:
            for part in parts(list(dict.fromkeys(record_ids))):
                found.update(
                    (rid, label) for rid, label in conn.execute(query.where(_T.record_id.in_(part)))
                )
        return found
