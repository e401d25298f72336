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
CREATE OR REPLACE FUNCTION public.reporting_latest_status_recomputed()
RETURNS TABLE (order_id bigint, status_id bigint, status text, status_created timestamptz)
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
ROWS 1
AS $recomputed$
BEGIN
    RETURN QUERY
    SELECT h.order_id, h.status_id, h.status, h.created
    FROM reporting.order_status_history AS h
    WHERE h.latest;
END
$recomputed$
