-- The orders changed since the snapshot the materialized views hold: their
-- change-log entries were written by transactions not visible in it.
-- new_order: the order itself was created after the snapshot.
-- deleted_order: the order was deleted after the snapshot.
SELECT
    c.order_id,
    bool_or(c.source = 'order_insert') AS new_order,
    bool_or(c.source = 'order_delete') AS deleted_order
FROM public.reporting_orderchange AS c
CROSS JOIN reporting.snapshot_state AS st
WHERE c.order_id IS NOT NULL
  AND NOT pg_visible_in_snapshot(c.xid, st.snapshot)
GROUP BY c.order_id
