-- Orders per latest status, as of the refresh; 'none' counts the orders that
-- had no status row. Refreshed after reporting.order_latest_status, in the same
-- transaction and snapshot.
SELECT v.status::text AS status, count(*)::bigint AS orders
FROM reporting.order_latest_status AS v
GROUP BY v.status
UNION ALL
SELECT 'none', count(*)::bigint
FROM public.reporting_order AS o
WHERE NOT EXISTS (SELECT 1 FROM reporting.order_latest_status AS v WHERE v.order_id = o.id)
