-- Orders per day of creation (UTC) and latest status, exact at query time:
-- reporting.order_daily_status corrected by the orders changed since the
-- snapshot: -1 on the day and status it counted as then (if it existed then),
-- +1 on the day and status it counts as now (if it exists now).
--
-- The day an order counted on then is the creation day of its row now, unless
-- that row was deleted or updated since: then (and after a TRUNCATE, or a
-- plain refresh the reader's snapshot predates) everything is recounted.
WITH pending AS MATERIALIZED (
    SELECT p.order_id, p.in_snapshot, p.order_row_removed
    FROM public.reporting_pending_changes AS p
    ORDER BY p.order_id
),
full_recompute AS MATERIALIZED (
    SELECT st.needs_full_recompute
        OR EXISTS (SELECT 1 FROM pending AS p WHERE p.in_snapshot AND p.order_row_removed)
        AS needed
    FROM public.reporting_snapshot_state AS st
),
delta AS (
    SELECT (o.created AT TIME ZONE 'UTC')::date AS day, coalesce(v.status::text, 'none') AS status,
           -1 AS orders
    FROM pending AS p
    JOIN public.reporting_order AS o ON o.id = p.order_id
    LEFT JOIN reporting.order_latest_status AS v ON v.order_id = p.order_id
    WHERE p.in_snapshot
    UNION ALL
    SELECT (o.created AT TIME ZONE 'UTC')::date, coalesce(latest.status::text, 'none'), 1
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
SELECT day, status, sum(orders)::bigint AS orders
FROM (
    SELECT d.day, d.status, d.orders FROM reporting.order_daily_status AS d
    WHERE NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT delta.day, delta.status, delta.orders FROM delta
    WHERE NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT (o.created AT TIME ZONE 'UTC')::date, coalesce(latest.status::text, 'none'), 1
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
GROUP BY day, status
HAVING sum(orders) <> 0
ORDER BY day, status
