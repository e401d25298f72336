-- reporting_order_daily_status_computed(p_first, p_last): orders created on each
-- day from p_first to p_last (UTC), per latest status (NULL: no status row),
-- computed from the status history at query time, as the live strategy reads it:
-- each order of those days looks its latest row up in the history's index. Exact
-- always; its cost grows with the orders of the days asked for. The same answer as
-- reporting.order_daily_status_live for those days.
-- SQL and STABLE, so PostgreSQL inlines it into the caller's query.
-- v2: NULL, not the text 'none', for orders without rows (order_status_counts.sql
-- says why).
CREATE OR REPLACE FUNCTION public.reporting_order_daily_status_computed(p_first date, p_last date)
RETURNS TABLE (day date, status text, orders bigint)
LANGUAGE sql
STABLE
AS $daily$
SELECT (o.created AT TIME ZONE 'UTC')::date AS day, latest.status::text, count(*)
FROM public.reporting_order AS o
LEFT JOIN LATERAL (
    SELECT s.status FROM public.reporting_orderstatus AS s
    WHERE s.order_id = o.id ORDER BY s.created DESC, s.id DESC LIMIT 1
) AS latest ON true
WHERE o.created >= p_first::timestamp AT TIME ZONE 'UTC'
  AND o.created < (p_last + 1)::timestamp AT TIME ZONE 'UTC'
GROUP BY 1, 2
$daily$
