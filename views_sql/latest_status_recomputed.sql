-- reporting_latest_status_recomputed(): the latest status row of every order,
-- from the whole history. v2: the status as text (v1: varchar(16)), like every
-- other part of the real-time view now, so that a declared status of any length
-- passes, and the parts of the view keep one type (PostgreSQL appends the parts
-- of a UNION ALL in order only when their column types are the same). The part of the real-time view
-- (order_latest_status_live) used only when the change log cannot say what
-- changed (needs_full_recompute: after a TRUNCATE, or before the first refresh).
--
-- A plpgsql function declared to return one row: PostgreSQL does not inline it,
-- and plans the view as if this part cost nothing, which it does while it does
-- not run. Written inline, its cost (every status row, sorted) weighs on every
-- plan of the view, and PostgreSQL then sorts every row of a status for a page
-- rather than merging the other parts in order. The price: no filter reaches
-- into it, so while it runs, even one order's row costs a full recompute.
--
-- It runs with the privileges of whoever reads the view (no SECURITY DEFINER),
-- and reads the status history through reporting.order_status_history, which
-- BI roles may read: so it shows nobody anything they could not already see.
-- v3: the key's type is written bigint and a /*key_type*/ comment: migrate deploys it as
-- bigint; a declared source whose keys are of another type (uuid) has it
-- deployed with that type instead (reporting/source_sql.py).
-- v4: status_since, when the order entered its current status: the latest
-- created of the rows that start a run (the first row, or one whose previous
-- row has another status), as in order_latest_status.sql. The key and the row
-- id are cast to the types it returns: RETURN QUERY takes no other (an integer
-- key or row id failed every full recompute before).
CREATE OR REPLACE FUNCTION public.reporting_latest_status_recomputed()
RETURNS TABLE (
    order_id bigint /*key_type*/, status_id bigint, status text, status_created timestamptz,
    status_since timestamptz
)
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
ROWS 1
AS $recomputed$
BEGIN
    RETURN QUERY
    SELECT h.order_id::bigint /*key_type*/, h.status_id::bigint, h.status, h.created, h.status_since
    FROM (
        SELECT
            x.order_id, x.status_id, x.status, x.created, x.latest,
            max(x.created) FILTER (WHERE x.previous_status IS DISTINCT FROM x.status)
                OVER (PARTITION BY x.order_id) AS status_since
        FROM reporting.order_status_history AS x
    ) AS h
    WHERE h.latest;
END
$recomputed$
