-- The orders changed since the snapshot the materialized views hold: their
-- change-log entries were written by transactions not visible in it.
-- new_order: the order itself was created after the snapshot.
-- deleted_order: the order was deleted after the snapshot.
SELECT
    changed.order_id,
    bool_or(c.source = 'order_insert') AS new_order,
    bool_or(c.source = 'order_delete') AS deleted_order
FROM public.reporting_orderchange AS c
CROSS JOIN reporting.snapshot_state AS st
CROSS JOIN LATERAL unnest(c.order_ids) AS changed (order_id)
WHERE NOT pg_visible_in_snapshot(c.xid, st.snapshot)
GROUP BY changed.order_id
