-- Status changes per day (UTC) and kind (from_status -> to_status), as of the
-- refresh: e.g. pending -> complete (paid), complete -> cancelled (refunded),
-- pending -> cancelled (failed or abandoned).
SELECT
    (t.created AT TIME ZONE 'UTC')::date AS day,
    t.from_status,
    t.to_status,
    count(*)::bigint AS transitions
FROM reporting.order_status_transitions AS t
GROUP BY 1, 2, 3
