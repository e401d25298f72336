-- One row: the MVCC snapshot that the materialized views hold, the overlay that
-- carries them forward, and whether the change log can correct them order by
-- order.
--
-- generation: the latest successful refresh (a compaction): the materialized
--   views hold its snapshot, and the overlay rows of this generation correct
--   them. It commits in the same transaction as the views it refreshed, so a
--   reader sees both or neither.
-- snapshot, snapshot_at: that refresh's snapshot and when it was taken.
-- confirmed_at: the latest check since then that found nothing changed (an
--   'unchanged' run): the views were exact at that moment too.
-- as_of: the later of the two. Everything committed before it is in the views.
-- fold_snapshot, folded_at: the latest fold of this generation's overlay (the
--   refresh's snapshot before the first fold). Everything committed before
--   folded_at is in views + overlay; the changes since are the tail
--   (reporting_pending_changes).
-- overlay_orders, daily_exact: the overlay's size, and whether it knows the day
--   each of its orders counted on in the views (see reporting_fold).
-- view_filenodes: the files the materialized views are stored in now (the
--   refresh records them with its snapshot).
-- needs_full_recompute: real-time reads must compute everything from the
--   status history, because
--   * no refresh has succeeded yet, or
--   * a TRUNCATE happened since (a change-log entry without order ids), or
--   * the views are not in the files the latest refresh left them in. A plain
--     REFRESH (and a rebuild by migrate) writes a new file whose rows every
--     transaction sees at once, also one whose snapshot is older than that
--     REFRESH and therefore still sees the previous refresh's log row: the
--     contents are then newer than `snapshot`, and correcting them by the
--     change log would count some changes twice. REFRESH ... CONCURRENTLY
--     keeps the file and is versioned like any table.
WITH views_now AS (
    SELECT ARRAY[
        pg_relation_filenode('reporting.order_latest_status'::regclass),
        pg_relation_filenode('reporting.order_status_counts'::regclass),
        pg_relation_filenode('reporting.order_daily_status'::regclass),
        pg_relation_filenode('reporting.order_status_transitions'::regclass),
        pg_relation_filenode('reporting.order_transitions_daily'::regclass)
    ]::text[]::bigint[] AS filenodes
)
SELECT
    last_ok.id AS generation,
    last_ok.snapshot::pg_snapshot AS snapshot,
    last_ok.snapshot_at,
    confirmed.confirmed_at,
    greatest(last_ok.snapshot_at, confirmed.confirmed_at) AS as_of,
    coalesce(fold.snapshot, last_ok.snapshot)::pg_snapshot AS fold_snapshot,
    coalesce(fold.snapshot_at, last_ok.snapshot_at) AS folded_at,
    coalesce(fold.orders, 0) AS overlay_orders,
    coalesce(fold.changes, 0) AS folded_changes,
    coalesce(fold.daily_exact, true) AS daily_exact,
    views_now.filenodes AS view_filenodes,
    last_ok.id IS NULL
        OR last_ok.view_filenodes IS DISTINCT FROM views_now.filenodes
        OR EXISTS (
            -- The partial index on TRUNCATE entries, from the snapshot's xmin on:
            -- every older entry is visible in it.
            SELECT 1 FROM public.reporting_orderchange AS c
            WHERE c.order_ids IS NULL
              AND c.xid >= pg_snapshot_xmin(last_ok.snapshot::pg_snapshot)
              AND NOT pg_visible_in_snapshot(c.xid, last_ok.snapshot::pg_snapshot)
        ) AS needs_full_recompute
FROM views_now
LEFT JOIN LATERAL (
    SELECT r.id, r.snapshot, r.snapshot_at, r.view_filenodes
    FROM public.reporting_refreshrun AS r
    WHERE r.outcome = 'ok'
    ORDER BY r.id DESC
    LIMIT 1
) AS last_ok ON true
LEFT JOIN LATERAL (
    SELECT max(r.snapshot_at) AS confirmed_at
    FROM public.reporting_refreshrun AS r
    WHERE r.outcome = 'unchanged' AND r.id > last_ok.id
) AS confirmed ON true
LEFT JOIN public.reporting_fold AS fold ON fold.generation = last_ok.id
