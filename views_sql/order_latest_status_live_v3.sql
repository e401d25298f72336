-- The latest status of every order, exact at query time, in three parts:
--   1. the materialized view reporting.order_latest_status (as of its refresh),
--      but for the orders changed since;
--   2. the overlay (reporting_overlayorder): those orders as of the latest fold,
--      but for the orders changed since;
--   3. the tail (reporting_pending_changes): the orders changed since that fold,
--      computed live, one index lookup each.
-- Same columns as the materialized view. The fold runs every second or so, so
-- the tail stays small whatever the size of the data or the time since the
-- refresh.
--
-- Each branch is gated by a one-time filter, so only the branches that apply
-- run: normally the first three; after a TRUNCATE or before any refresh, the
-- fourth. Filters on status and (status_created, order_id) reach into every
-- branch, and each branch can deliver its rows in (status_created, order_id)
-- order from an index, so "status = X ORDER BY status_created DESC, order_id
-- DESC LIMIT n" merges the branches (Merge Append) and reads n rows or so of each.
SELECT v.order_id, v.status_id, v.status, v.status_created
FROM reporting.order_latest_status AS v
WHERE NOT (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
  AND NOT EXISTS (
      SELECT FROM public.reporting_overlayorder AS ov
      WHERE ov.generation = (SELECT st.generation FROM public.reporting_snapshot_state AS st)
        AND ov.order_id = v.order_id
  )
  AND v.order_id NOT IN (SELECT p.order_id FROM public.reporting_pending_changes AS p)
UNION ALL
SELECT ov.order_id, ov.status_id, ov.status, ov.status_created
FROM public.reporting_overlayorder AS ov
WHERE ov.generation = (SELECT st.generation FROM public.reporting_snapshot_state AS st)
  AND ov.status IS NOT NULL
  AND NOT (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
  AND ov.order_id NOT IN (SELECT p.order_id FROM public.reporting_pending_changes AS p)
UNION ALL
SELECT latest.order_id, latest.id, latest.status, latest.created
FROM public.reporting_pending_changes AS p
CROSS JOIN LATERAL (
    SELECT s.order_id, s.id, s.status, s.created
    FROM public.reporting_orderstatus AS s
    WHERE s.order_id = p.order_id
    ORDER BY s.created DESC, s.id DESC
    LIMIT 1
) AS latest
WHERE NOT (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
UNION ALL
SELECT everything.order_id, everything.id, everything.status, everything.created
FROM (
    SELECT DISTINCT ON (s.order_id) s.order_id, s.id, s.status, s.created
    FROM public.reporting_orderstatus AS s
    ORDER BY s.order_id, s.created DESC, s.id DESC
) AS everything
WHERE (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
