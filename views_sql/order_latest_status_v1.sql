-- The latest status of every order that has at least one status row.
--
-- "Latest" is the greatest (created, id): equal timestamps are common (bulk
-- imports, coarse clocks) and the higher id wins; a backfilled row with an
-- older "created" never becomes the latest. DISTINCT ON keeps the first row
-- per order_id in this ORDER BY, which the composite index
-- reporting_orderstatus (order_id, created DESC, id DESC) serves.
--
-- A change to this query is a new file (order_latest_status_v2.sql), never an
-- edit of this one: see "Changing a view" in the README.
SELECT DISTINCT ON (s.order_id)
    s.order_id,
    s.id AS status_id,
    s.status,
    s.created AS status_created
FROM public.reporting_orderstatus AS s
ORDER BY s.order_id, s.created DESC, s.id DESC
