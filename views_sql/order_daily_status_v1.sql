-- Orders per day of creation (UTC) and latest status, as of the refresh; the
-- status 'none' counts orders without any status row. For charts of the last N days.
SELECT
    (o.created AT TIME ZONE 'UTC')::date AS day,
    coalesce(v.status::text, 'none') AS status,
    count(*)::bigint AS orders
FROM public.reporting_order AS o
LEFT JOIN reporting.order_latest_status AS v ON v.order_id = o.id
GROUP BY 1, 2
