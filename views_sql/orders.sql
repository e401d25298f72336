-- Every order, with its day of creation (UTC): for reports per order beyond its
-- latest status (join order_latest_status_live on order_id).
SELECT o.id AS order_id, o.created, (o.created AT TIME ZONE 'UTC')::date AS day
FROM public.reporting_order AS o
