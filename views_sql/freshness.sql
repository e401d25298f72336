-- How fresh the materialized views are, for BI dashboards:
-- as_of: everything committed before it is in the views: the snapshot time of
--   the latest refresh, or the latest check since that found nothing changed;
-- snapshot_at, confirmed_at: those two times;
-- age, changes_since: how long ago as_of was, and the changes since the
--   refresh (status or order rows written; a TRUNCATE counts as one): those the
--   folds took into the overlay, and those since the latest fold;
-- folded_at, overlay_orders: the latest fold (everything committed before it is
--   in the views and the overlay), and how many orders the overlay holds;
-- and the latest refresh run.
SELECT
    st.as_of,
    statement_timestamp() AS checked_at,
    statement_timestamp() - st.as_of AS age,
    st.folded_changes + (
        SELECT coalesce(sum(coalesce(cardinality(c.order_ids), 1)), 0)::bigint
        FROM public.reporting_orderchange AS c
        -- Not visible in the fold's snapshot, as views_sql/pending_changes.sql finds them.
        WHERE c.xid >= pg_snapshot_xmax(st.fold_snapshot)
           OR c.xid = ANY (ARRAY(SELECT pg_snapshot_xip(st.fold_snapshot)))
    ) AS changes_since,
    st.needs_full_recompute,
    -- On a streaming replica: how far behind the primary its replay is (the age
    -- of the last transaction it replayed; it also grows while the primary is idle).
    pg_is_in_recovery() AS on_replica,
    CASE WHEN pg_is_in_recovery() THEN statement_timestamp() - pg_last_xact_replay_timestamp() END
        AS replay_lag,
    last_run.outcome AS last_refresh_outcome,
    last_run.started AS last_refresh_started,
    last_run.error AS last_refresh_error,
    st.snapshot_at,
    st.confirmed_at,
    st.folded_at,
    st.overlay_orders
FROM public.reporting_snapshot_state AS st
LEFT JOIN LATERAL (
    SELECT r.outcome, r.started, r.error
    FROM public.reporting_refreshrun AS r
    ORDER BY r.id DESC
    LIMIT 1
) AS last_run ON true
