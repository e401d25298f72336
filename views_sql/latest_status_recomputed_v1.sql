-- reporting_latest_status_recomputed(): the latest status row of every order,
-- from the whole history (DISTINCT ON). The part of the real-time view
-- (order_latest_status_live_v4) used only when the change log cannot say what
-- changed (needs_full_recompute: after a TRUNCATE, or before the first refresh).
--
-- A plpgsql function declared to return one row: PostgreSQL does not inline it,
-- and plans the view as if this part cost nothing, which it does while it does
-- not run; inlined, its sort of every order would weigh on the plan of every page.
--
-- A function in a view runs with the privileges of whoever reads the view, and
-- BI roles may not read the status history: SECURITY DEFINER lets it read as its
-- owner, as the view's other parts do. It takes no arguments and returns what the
-- view shows, and its search_path is pinned. EXECUTE is revoked from PUBLIC by
-- the migration that creates it and granted to the BI group with the views.
CREATE OR REPLACE FUNCTION public.reporting_latest_status_recomputed()
RETURNS TABLE (order_id bigint, status_id bigint, status varchar(16), status_created timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1
AS $recomputed$
BEGIN
    RETURN QUERY
    SELECT DISTINCT ON (s.order_id) s.order_id, s.id, s.status, s.created
    FROM public.reporting_orderstatus AS s
    ORDER BY s.order_id, s.created DESC, s.id DESC;
END
$recomputed$
