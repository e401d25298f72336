-- Every status row of every order, in the order that defines the latest status
-- (greatest (created, id) last), with the status before it and how long the
-- order stayed in it: until the next row, or until now for the latest.
-- Filter on order_id for one order's history: the filter reaches the index.
SELECT
    s.id AS status_id,
    s.order_id,
    s.status::text AS status,
    s.created,
    lag(s.status::text) OVER w AS previous_status,
    lead(s.created) OVER w AS next_created,
    coalesce(lead(s.created) OVER w, statement_timestamp()) - s.created AS time_in_status,
    lead(s.id) OVER w IS NULL AS latest
FROM public.reporting_orderstatus AS s
WINDOW w AS (PARTITION BY s.order_id ORDER BY s.created, s.id)
