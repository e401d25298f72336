-- Orders per day of creation (UTC) and latest status, as of the refresh; status
-- NULL counts the orders without any status row. For charts of the last N days.
-- v2: NULL, not the text 'none', for orders without rows (order_status_counts.sql
-- says why).
SELECT
    (o.created AT TIME ZONE 'UTC')::date AS day,
    v.status::text AS status,
    count(*)::bigint AS orders
FROM public.reporting_order AS o
LEFT JOIN reporting.order_latest_status AS v ON v.order_id = o.id
GROUP BY 1, 2
