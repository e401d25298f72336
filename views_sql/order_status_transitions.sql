-- Every change of an order's status, as of the refresh: a status row whose
-- previous row (in the order that defines the latest status: created, then id)
-- records another status. An order's first row, and a row that repeats the
-- status before it, change nothing.
--
-- week: the week (Monday, UTC) of the change, for weekly reports.
-- since_first: the time from the order's first status row to this one: how
--   long the order took to complete, or to be cancelled.
SELECT h.status_id, h.order_id, h.from_status, h.to_status, h.created, h.week, h.since_first
FROM (
    SELECT
        s.id AS status_id,
        s.order_id,
        lag(s.status::text) OVER w AS from_status,
        s.status::text AS to_status,
        s.created,
        date_trunc('week', s.created AT TIME ZONE 'UTC')::date AS week,
        s.created - first_value(s.created) OVER w AS since_first
    FROM public.reporting_orderstatus AS s
    WINDOW w AS (PARTITION BY s.order_id ORDER BY s.created, s.id)
) AS h
WHERE h.from_status <> h.to_status
