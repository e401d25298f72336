-- Orders per latest status, as of the refresh; status NULL counts the orders
-- that had no status row. Refreshed after reporting.order_latest_status, in the
-- same transaction and snapshot.
-- v2: NULL, not the text 'none', marks the orders without rows, so that every
-- status value counts under its own value ('none' and '' too): a status row that
-- said 'none' made two rows 'none' and the refresh failed on the unique index.
-- A unique index lets one NULL row in, and REFRESH ... CONCURRENTLY replaces it
-- (it matches rows on the index's columns, and NULL matches no row: the old row
-- is deleted and the new one inserted).
SELECT v.status::text AS status, count(*)::bigint AS orders
FROM reporting.order_latest_status AS v
GROUP BY v.status
UNION ALL
SELECT NULL::text, count(*)::bigint
FROM public.reporting_order AS o
WHERE NOT EXISTS (SELECT 1 FROM reporting.order_latest_status AS v WHERE v.order_id = o.id)
