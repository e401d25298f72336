-- The latest status of every order that has at least one status row, and since
-- when the order is in that status.
--
-- "Latest" is the greatest (created, id): equal timestamps are common (bulk
-- imports, coarse clocks) and the higher id wins; a backfilled row with an
-- older "created" never becomes the latest. DISTINCT ON keeps the first row
-- per order_id in this ORDER BY, which the composite index
-- reporting_orderstatus (order_id, created DESC, id DESC) serves.
--
-- v2: status_since, when the order entered its current status: the created
-- time of the first row of the final run of equal statuses, in the same order
-- (created, id). A row that repeats the status before it (a second
-- 'cancelled') moves status_created, not status_since. Computed in the one
-- pass over the index that DISTINCT ON makes: walking each order's rows newest
-- first, a row starts a run when the row before it in time (lead(), in this
-- descending order) has another status or there is none; status_since is the
-- latest such start. Both windows and DISTINCT ON want the same order, the
-- index's, so one ordered pass (index scan or one sort) serves all three.
-- status_created stays: it is the latest row's time, and the order of the
-- lists (the keyset index).
SELECT DISTINCT ON (h.order_id)
    h.order_id,
    h.id AS status_id,
    h.status,
    h.created AS status_created,
    max(h.created) FILTER (WHERE h.starts_run) OVER (PARTITION BY h.order_id) AS status_since
FROM (
    SELECT
        s.order_id,
        s.id,
        s.status,
        s.created,
        s.status IS DISTINCT FROM lead(s.status) OVER (
            PARTITION BY s.order_id ORDER BY s.created DESC, s.id DESC
        ) AS starts_run
    FROM public.reporting_orderstatus AS s
) AS h
ORDER BY h.order_id, h.created DESC, h.id DESC
