-- Status changes per day (UTC) and kind, exact at query time:
-- reporting.order_transitions_daily, plus what the overlay adds
-- (reporting_overlaytransitiondaily), minus the changes the tail's orders had at
-- the latest fold (the overlay's rows for those in it, the materialized view's
-- for the others), plus the ones they have now (recomputed from their history).
-- Its cost grows with the orders changed since the latest fold.
WITH st AS MATERIALIZED (
    SELECT s.generation, s.needs_full_recompute AS needed FROM public.reporting_snapshot_state AS s
),
tail AS MATERIALIZED (
    SELECT p.order_id, p.in_overlay FROM public.reporting_pending_changes AS p ORDER BY p.order_id
),
history AS (
    -- The status rows to recompute: the tail's orders' (one index range each),
    -- or all of them when the change log cannot tell (needs_full_recompute).
    SELECT s.order_id, s.id, s.status, s.created
    FROM public.reporting_orderstatus AS s
    WHERE s.order_id IN (SELECT t.order_id FROM tail AS t)
      AND NOT (SELECT needed FROM st)
    UNION ALL
    SELECT s.order_id, s.id, s.status, s.created
    FROM public.reporting_orderstatus AS s
    WHERE (SELECT needed FROM st)
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
    WHERE NOT (SELECT needed FROM st)
    UNION ALL
    SELECT d.day, d.from_status, d.to_status, d.transitions
    FROM public.reporting_overlaytransitiondaily AS d
    WHERE d.generation = (SELECT generation FROM st) AND NOT (SELECT needed FROM st)
    UNION ALL
    SELECT (x.created AT TIME ZONE 'UTC')::date, x.from_status, x.to_status, -1
    FROM tail AS t
    JOIN public.reporting_overlaytransition AS x
        ON x.generation = (SELECT generation FROM st) AND x.order_id = t.order_id
    WHERE t.in_overlay AND NOT (SELECT needed FROM st)
    UNION ALL
    SELECT (x.created AT TIME ZONE 'UTC')::date, x.from_status, x.to_status, -1
    FROM tail AS t
    JOIN reporting.order_status_transitions AS x ON x.order_id = t.order_id
    WHERE NOT t.in_overlay AND NOT (SELECT needed FROM st)
    UNION ALL
    SELECT (n.created AT TIME ZONE 'UTC')::date, n.from_status, n.to_status, 1
    FROM now_changes AS n
) AS parts
GROUP BY day, from_status, to_status
HAVING sum(transitions) <> 0
ORDER BY day, from_status, to_status
