-- Orders per latest status, exact at query time: reporting.order_status_counts
-- plus, for each order changed since the snapshot, -1 for what it counted as
-- then (if it existed then) and +1 for what it counts as now (if it exists now).
-- No full recount unless needs_full_recompute.
--
-- Its cost grows with the orders changed since the refresh (two index lookups
-- each), not with the number of orders.
WITH pending AS MATERIALIZED (
    -- Sorted, so that the index lookups below walk each index in order.
    SELECT p.order_id, p.in_snapshot FROM public.reporting_pending_changes AS p ORDER BY p.order_id
),
full_recompute AS MATERIALIZED (
    SELECT st.needs_full_recompute AS needed FROM public.reporting_snapshot_state AS st
),
delta AS (
    -- What each changed order counted as in the snapshot: its status there, or
    -- 'none' if it existed without one. An order that did not exist then (created
    -- since, or never created at all) counted nothing.
    SELECT coalesce(v.status::text, 'none') AS status, -1 AS orders
    FROM pending AS p
    LEFT JOIN reporting.order_latest_status AS v ON v.order_id = p.order_id
    WHERE p.in_snapshot
    UNION ALL
    -- What it counts as now, if it exists now.
    SELECT coalesce(latest.status::text, 'none'), 1
    FROM pending AS p
    JOIN public.reporting_order AS o ON o.id = p.order_id
    LEFT JOIN LATERAL (
        SELECT s.status
        FROM public.reporting_orderstatus AS s
        WHERE s.order_id = p.order_id
        ORDER BY s.created DESC, s.id DESC
        LIMIT 1
    ) AS latest ON true
)
SELECT status, sum(orders)::bigint AS orders
FROM (
    SELECT c.status, c.orders FROM reporting.order_status_counts AS c
    WHERE NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT d.status, d.orders FROM delta AS d
    WHERE NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT coalesce(latest.status::text, 'none'), 1
    FROM public.reporting_order AS o
    LEFT JOIN LATERAL (
        SELECT s.status
        FROM public.reporting_orderstatus AS s
        WHERE s.order_id = o.id
        ORDER BY s.created DESC, s.id DESC
        LIMIT 1
    ) AS latest ON true
    WHERE (SELECT needed FROM full_recompute)
) AS parts
GROUP BY status
ORDER BY status
