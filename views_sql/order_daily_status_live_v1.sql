-- Orders per day of creation (UTC) and latest status, exact at query time:
-- reporting.order_daily_status corrected by the orders changed since the
-- snapshot. A changed order's day is its creation day, which never changes;
-- an order deleted since the snapshot takes its day with it, so then (and after
-- a TRUNCATE) everything is recounted.
WITH pending AS MATERIALIZED (
    SELECT p.order_id, p.new_order, p.deleted_order
    FROM reporting.pending_changes AS p
    ORDER BY p.order_id
),
full_recompute AS MATERIALIZED (
    SELECT st.needs_full_recompute
        OR EXISTS (SELECT 1 FROM pending AS p WHERE p.deleted_order AND NOT p.new_order)
        AS needed
    FROM reporting.snapshot_state AS st
),
delta AS (
    SELECT (o.created AT TIME ZONE 'UTC')::date AS day, coalesce(v.status::text, 'none') AS status,
           -1 AS orders
    FROM pending AS p
    JOIN public.reporting_order AS o ON o.id = p.order_id
    LEFT JOIN reporting.order_latest_status AS v ON v.order_id = p.order_id
    WHERE NOT p.new_order
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
