-- Orders per latest status, exact at query time: reporting.order_status_counts,
-- plus what the overlay adds (reporting_overlaycount, kept by the folds), plus
-- for each order of the tail -1 for what it counted as at the latest fold (if
-- it existed then) and +1 for what it counts as now (if it exists now).
-- No full recount unless needs_full_recompute.
--
-- Its cost grows with the orders changed since the latest fold (two index
-- lookups each), not with the number of orders or the time since the refresh.
--
-- v4: status NULL counts the orders without rows (order_status_counts.sql);
-- the overlay keeps them as no_rows (overlay_fold.sql).
WITH st AS MATERIALIZED (
    SELECT s.generation, s.needs_full_recompute AS needed FROM public.reporting_snapshot_state AS s
),
tail AS MATERIALIZED (
    -- Sorted, so that the index lookups below walk each index in order.
    SELECT p.order_id, p.existed, p.status_then FROM public.reporting_pending_changes AS p ORDER BY p.order_id
)
SELECT status, sum(orders)::bigint AS orders
FROM (
    SELECT c.status, c.orders FROM reporting.order_status_counts AS c
    WHERE NOT (SELECT needed FROM st)
    UNION ALL
    SELECT CASE WHEN NOT d.no_rows THEN d.status END, d.orders FROM public.reporting_overlaycount AS d
    WHERE d.generation = (SELECT generation FROM st) AND NOT (SELECT needed FROM st)
    UNION ALL
    SELECT t.status_then, -1 FROM tail AS t
    WHERE t.existed AND NOT (SELECT needed FROM st)
    UNION ALL
    SELECT latest.status::text, 1
    FROM tail AS t
    JOIN public.reporting_order AS o ON o.id = t.order_id
    LEFT JOIN LATERAL (
        SELECT s.status
        FROM public.reporting_orderstatus AS s
        WHERE s.order_id = t.order_id
        ORDER BY s.created DESC, s.id DESC
        LIMIT 1
    ) AS latest ON true
    WHERE NOT (SELECT needed FROM st)
    UNION ALL
    SELECT latest.status::text, 1
    FROM public.reporting_order AS o
    LEFT JOIN LATERAL (
        SELECT s.status
        FROM public.reporting_orderstatus AS s
        WHERE s.order_id = o.id
        ORDER BY s.created DESC, s.id DESC
        LIMIT 1
    ) AS latest ON true
    WHERE (SELECT needed FROM st)
) AS parts
GROUP BY status
ORDER BY status
