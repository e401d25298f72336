-- The tail: the orders changed since the latest fold of the overlay (since the
-- refresh, before the first fold), and what each counted as then, in the
-- materialized views as corrected by the overlay. Real-time reads recompute
-- these orders from the status history; a fold folds exactly these into the
-- overlay.
--
-- The change-log entries are those of transactions not visible in the fold's
-- snapshot: those that began after it (xid from its xmax on) and those in
-- progress when it was taken (its xip list), two ranges of the index on xid. Not
-- "from its xmin on, if not visible": a transaction that stays open for minutes
-- (a compaction at 10 M orders) holds the xmin of every snapshot back, and every
-- read would then go through every entry written since it began.
--
-- in_overlay: the overlay holds the order (then: as of the fold).
-- existed: the order existed then. For an order in the overlay, the overlay
--   says. Otherwise it is unchanged since the refresh, and its first order-row
--   entry since tells: a row that went away (deleted, or the old side of an
--   update) was there; a row that came (inserted, or the new side of an update)
--   was not. Entries of one order id are in commit order, since the writes
--   behind them wait for each other's row locks. Without such an entry, the
--   order exists now exactly when it existed then. Status rows prove nothing:
--   the foreign key is checked at commit, so one transaction can insert and
--   delete status rows of an order that never existed.
-- status_then: its latest status then (NULL: none).
-- day_then: the day it was created, then; NULL if it did not exist or that is
--   not known (its order row was deleted or updated since the refresh, before
--   a fold saw it).
WITH st AS MATERIALIZED (
    SELECT s.generation, pg_snapshot_xmax(s.fold_snapshot) AS fold_xmax,
           ARRAY(SELECT pg_snapshot_xip(s.fold_snapshot)) AS fold_xip
    FROM public.reporting_snapshot_state AS s
),
tail AS (
    SELECT
        changed.order_id,
        (array_agg(c.source ORDER BY c.id) FILTER (WHERE c.source LIKE 'order%'))[1] AS first_order_entry,
        bool_or(c.source IN ('order_delete', 'order_update_old')) AS order_row_removed
    FROM st
    JOIN public.reporting_orderchange AS c ON c.xid >= st.fold_xmax OR c.xid = ANY (st.fold_xip)
    CROSS JOIN LATERAL unnest(c.order_ids) AS changed (order_id)
    GROUP BY changed.order_id
)
SELECT
    t.order_id,
    ov.in_overlay IS NOT NULL AS in_overlay,
    CASE
        WHEN ov.in_overlay THEN ov.exists_now
        WHEN t.first_order_entry IN ('order_delete', 'order_update_old') THEN true
        WHEN t.first_order_entry IN ('order_insert', 'order_update_new') THEN false
        ELSE o.created IS NOT NULL
    END AS existed,
    CASE WHEN ov.in_overlay THEN ov.status ELSE v.status::text END AS status_then,
    CASE
        WHEN ov.in_overlay THEN ov.day
        WHEN NOT t.order_row_removed THEN (o.created AT TIME ZONE 'UTC')::date
    END AS day_then
FROM tail AS t
CROSS JOIN st
-- One index lookup each (LATERAL ... LIMIT 1 keeps PostgreSQL from hashing the
-- whole overlay or view for a few hundred orders).
LEFT JOIN LATERAL (
    SELECT true AS in_overlay, ov.exists_now, ov.status, ov.day
    FROM public.reporting_overlayorder AS ov
    WHERE ov.generation = st.generation AND ov.order_id = t.order_id
    LIMIT 1
) AS ov ON true
LEFT JOIN LATERAL (
    SELECT v.status FROM reporting.order_latest_status AS v WHERE v.order_id = t.order_id LIMIT 1
) AS v ON true
LEFT JOIN LATERAL (
    SELECT o.created FROM public.reporting_order AS o WHERE o.id = t.order_id LIMIT 1
) AS o ON true
