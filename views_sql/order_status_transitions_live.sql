-- Every change of an order's status, exact at query time, in three parts like
-- reporting.order_latest_status_live: the materialized view
-- reporting.order_status_transitions but for the orders changed since its
-- refresh; the overlay's rows (reporting_overlaytransition) of those, as of the
-- latest fold, but for the orders changed since; and the tail's orders,
-- recomputed from their history (one index range each). Same columns.
-- Filters on to_status and week (or order_id) reach the indexes.
SELECT t.status_id, t.order_id, t.from_status, t.to_status, t.created, t.week, t.since_first
FROM reporting.order_status_transitions AS t
WHERE NOT (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
  AND NOT EXISTS (
      SELECT FROM public.reporting_overlayorder AS ov
      WHERE ov.generation = (SELECT st.generation FROM public.reporting_snapshot_state AS st)
        AND ov.order_id = t.order_id
  )
  AND t.order_id NOT IN (SELECT p.order_id FROM public.reporting_pending_changes AS p)
UNION ALL
SELECT x.status_id, x.order_id, x.from_status, x.to_status, x.created, x.week, x.since_first
FROM public.reporting_overlaytransition AS x
WHERE x.generation = (SELECT st.generation FROM public.reporting_snapshot_state AS st)
  AND NOT (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
  AND x.order_id NOT IN (SELECT p.order_id FROM public.reporting_pending_changes AS p)
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
      AND NOT (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
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
    WHERE (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
    WINDOW w AS (PARTITION BY s.order_id ORDER BY s.created, s.id)
) AS h
WHERE h.from_status <> h.to_status
