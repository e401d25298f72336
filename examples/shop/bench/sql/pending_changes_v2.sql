-- The orders changed since the snapshot the materialized views hold: their
-- change-log entries were written by transactions not visible in it.
--
-- in_snapshot: the order existed in that snapshot. Its first order-row entry
--   since then tells: a row that went away (deleted, or the old side of an
--   update) was there; a row that came (inserted, or the new side of an
--   update) was not. Entries of one order id are in commit order, since the
--   writes behind them wait for each other's row locks. An order without such
--   an entry exists now exactly when it existed then. Status rows prove
--   nothing: the foreign key is checked at commit, so one transaction can
--   insert and delete status rows of an order that never existed.
-- order_row_removed: its order row was deleted or updated since, so its day of
--   creation in the snapshot is not known from the row it has now, if any.
SELECT
    changed.order_id,
    CASE (array_agg(c.source ORDER BY c.id) FILTER (WHERE c.source LIKE 'order%'))[1]
        WHEN 'order_delete' THEN true
        WHEN 'order_update_old' THEN true
        WHEN 'order_insert' THEN false
        WHEN 'order_update_new' THEN false
        ELSE EXISTS (SELECT 1 FROM public.reporting_order AS o WHERE o.id = changed.order_id)
    END AS in_snapshot,
    bool_or(c.source IN ('order_delete', 'order_update_old')) AS order_row_removed
FROM public.reporting_orderchange AS c
CROSS JOIN public.reporting_snapshot_state AS st
CROSS JOIN LATERAL unnest(c.order_ids) AS changed (order_id)
WHERE NOT pg_visible_in_snapshot(c.xid, st.snapshot)
GROUP BY changed.order_id
