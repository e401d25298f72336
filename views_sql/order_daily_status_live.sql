-- Orders per day of creation (UTC) and latest status, exact at query time:
-- reporting.order_daily_status, plus what the overlay adds
-- (reporting_overlaydaily), plus for each order of the tail -1 on the day and
-- status it counted as at the latest fold (if it existed then) and +1 on the
-- day and status it counts as now (if it exists now).
--
-- Everything is recounted instead (needs_full_recompute, or the day an order
-- counted on is not known: its order row was deleted or updated since the
-- refresh before a fold saw it, until the next refresh).
--
-- v4: status NULL counts the orders without rows (order_status_counts.sql);
-- the overlay keeps them as no_rows (overlay_fold.sql).
WITH st AS MATERIALIZED (
    SELECT s.generation, s.needs_full_recompute OR NOT s.daily_exact AS needed
    FROM public.reporting_snapshot_state AS s
),
tail AS MATERIALIZED (
    SELECT p.order_id, p.existed, p.status_then, p.day_then
    FROM public.reporting_pending_changes AS p
    ORDER BY p.order_id
),
full_recompute AS MATERIALIZED (
    SELECT (SELECT needed FROM st) OR EXISTS (SELECT FROM tail AS t WHERE t.existed AND t.day_then IS NULL)
        AS needed
),
delta AS (
    SELECT t.day_then AS day, t.status_then AS status, -1 AS orders
    FROM tail AS t
    WHERE t.existed
    UNION ALL
    SELECT (o.created AT TIME ZONE 'UTC')::date, latest.status::text, 1
    FROM tail AS t
    JOIN public.reporting_order AS o ON o.id = t.order_id
    LEFT JOIN LATERAL (
        SELECT s.status
        FROM public.reporting_orderstatus AS s
        WHERE s.order_id = t.order_id
        ORDER BY s.created DESC, s.id DESC
        LIMIT 1
    ) AS latest ON true
)
SELECT day, status, sum(orders)::bigint AS orders
FROM (
    SELECT d.day, d.status, d.orders FROM reporting.order_daily_status AS d
    WHERE NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT d.day, CASE WHEN NOT d.no_rows THEN d.status END, d.orders FROM public.reporting_overlaydaily AS d
    WHERE d.generation = (SELECT generation FROM st) AND NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT delta.day, delta.status, delta.orders FROM delta
    WHERE NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT (o.created AT TIME ZONE 'UTC')::date, latest.status::text, 1
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
