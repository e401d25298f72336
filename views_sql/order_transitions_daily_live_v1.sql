-- Status changes per day (UTC) and kind, exact at query time:
-- reporting.order_transitions_daily, minus the changes the orders changed since
-- the snapshot had then (their rows in reporting.order_status_transitions),
-- plus the ones they have now (recomputed from their history).
-- Its cost grows with the orders changed since the refresh, not with all orders.
WITH pending AS MATERIALIZED (
    SELECT p.order_id FROM public.reporting_pending_changes AS p ORDER BY p.order_id
),
full_recompute AS MATERIALIZED (
    SELECT st.needs_full_recompute AS needed FROM public.reporting_snapshot_state AS st
),
history AS (
    -- The status rows to recompute: the changed orders' (one index range each),
    -- or all of them when the change log cannot tell (needs_full_recompute).
    SELECT s.order_id, s.id, s.status, s.created
    FROM public.reporting_orderstatus AS s
    WHERE s.order_id IN (SELECT p.order_id FROM pending AS p)
      AND NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT s.order_id, s.id, s.status, s.created
    FROM public.reporting_orderstatus AS s
    WHERE (SELECT needed FROM full_recompute)
),
now_changes AS (
    SELECT h.from_status, h.to_status, h.created
    FROM (
        SELECT
            lag(s.status::text) OVER w AS from_status,
            s.status::text AS to_status,
            s.created
        FROM history AS s
        WINDOW w AS (PARTITION BY s.order_id ORDER BY s.created, s.id)
    ) AS h
    WHERE h.from_status <> h.to_status
)
SELECT day, from_status, to_status, sum(transitions)::bigint AS transitions
FROM (
    SELECT d.day, d.from_status, d.to_status, d.transitions
    FROM reporting.order_transitions_daily AS d
    WHERE NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT (t.created AT TIME ZONE 'UTC')::date, t.from_status, t.to_status, -1
    FROM pending AS p
    JOIN reporting.order_status_transitions AS t ON t.order_id = p.order_id
    WHERE NOT (SELECT needed FROM full_recompute)
    UNION ALL
    SELECT (n.created AT TIME ZONE 'UTC')::date, n.from_status, n.to_status, 1
    FROM now_changes AS n
) AS parts
GROUP BY day, from_status, to_status
HAVING sum(transitions) <> 0
ORDER BY day, from_status, to_status
