-- The latest status of every order, exact at query time: the materialized view
-- reporting.order_latest_status, with the orders changed since its snapshot
-- computed live (one index lookup each). Same columns as the materialized view.
--
-- Each branch is gated by a one-time filter, so only the branches that apply
-- run: normally the first two; after a TRUNCATE or before any refresh, the third.
-- Filters on status and (status_created, order_id) reach into every branch, so
-- "status = X ORDER BY status_created DESC, order_id DESC LIMIT n" reads the
-- materialized view's keyset index.
SELECT v.order_id, v.status_id, v.status, v.status_created
FROM reporting.order_latest_status AS v
WHERE NOT (SELECT needs_full_recompute FROM public.reporting_snapshot_state)
  AND v.order_id NOT IN (SELECT p.order_id FROM public.reporting_pending_changes AS p)
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
WHERE NOT (SELECT needs_full_recompute FROM public.reporting_snapshot_state)
UNION ALL
SELECT everything.order_id, everything.id, everything.status, everything.created
FROM (
    SELECT DISTINCT ON (s.order_id) s.order_id, s.id, s.status, s.created
    FROM public.reporting_orderstatus AS s
    ORDER BY s.order_id, s.created DESC, s.id DESC
) AS everything
WHERE (SELECT needs_full_recompute FROM public.reporting_snapshot_state)
