-- Every change of an order's status, exact at query time: the materialized
-- view reporting.order_status_transitions, with the orders changed since its
-- snapshot recomputed from their history (one index range each). Same columns.
--
-- A changed order's rows in the materialized view are exactly what it counted
-- as in the snapshot, so they are left out whether or not the order exists now;
-- its status rows now (none, if it was deleted) give what it counts as now.
-- Filters on to_status and created reach the materialized view's index.
SELECT t.status_id, t.order_id, t.from_status, t.to_status, t.created, t.week, t.since_first
FROM reporting.order_status_transitions AS t
WHERE NOT (SELECT needs_full_recompute FROM public.reporting_snapshot_state)
  AND t.order_id NOT IN (SELECT p.order_id FROM public.reporting_pending_changes AS p)
UNION ALL
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
    WHERE s.order_id IN (SELECT p.order_id FROM public.reporting_pending_changes AS p)
      AND NOT (SELECT needs_full_recompute FROM public.reporting_snapshot_state)
    WINDOW w AS (PARTITION BY s.order_id ORDER BY s.created, s.id)
) AS h
WHERE h.from_status <> h.to_status
UNION ALL
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
    WHERE (SELECT needs_full_recompute FROM public.reporting_snapshot_state)
    WINDOW w AS (PARTITION BY s.order_id ORDER BY s.created, s.id)
) AS h
WHERE h.from_status <> h.to_status
