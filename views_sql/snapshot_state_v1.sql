-- One row: the MVCC snapshot that the materialized views hold, and whether the
-- change log can correct them order by order.
--
-- snapshot, as_of: from the latest successful refresh, which commits in the
-- same transaction as the views it refreshed, so a reader sees both or neither.
-- needs_full_recompute: no successful refresh yet, or a TRUNCATE since (a
-- change-log entry without order ids): real-time reads then compute
-- everything from the status history.
SELECT
    last_ok.snapshot::pg_snapshot AS snapshot,
    last_ok.snapshot_at AS as_of,
    last_ok.id IS NULL
        OR EXISTS (
            SELECT 1 FROM public.reporting_orderchange AS c
            WHERE c.order_ids IS NULL
              AND NOT pg_visible_in_snapshot(c.xid, last_ok.snapshot::pg_snapshot)
        ) AS needs_full_recompute
FROM (SELECT 1) AS one
LEFT JOIN (
    SELECT r.id, r.snapshot, r.snapshot_at
    FROM public.reporting_refreshrun AS r
    WHERE r.outcome = 'ok'
    ORDER BY r.id DESC
    LIMIT 1
) AS last_ok ON true
