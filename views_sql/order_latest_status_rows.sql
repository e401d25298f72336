-- reporting_latest_status_rows(p_status): every order whose latest status is
-- p_status (NULL: every order that has one), exact at query time, in no
-- particular order: the rows of reporting.order_latest_status_live, read for
-- whole lists, counts and point lookups. The view is written for pages (each of
-- its rows probes the overlay by index, and its full recompute takes no
-- filter); this reads the same parts with hash anti-joins, one pass over each,
-- which is what a whole list wants. Filters on the result (order_id = X,
-- status_created ranges) reach into every part, the full recompute included.
-- SQL and STABLE, so PostgreSQL inlines it into the caller's query.
-- v2: the key's type is written bigint and a /*key_type*/ comment: migrate deploys it as
-- bigint; a declared source whose keys are of another type (uuid) has it
-- deployed with that type instead (reporting/source_sql.py).
-- v3: status_since, when the order entered its current status, in every part
-- (order_latest_status_live.sql says how the tail finds it).
CREATE OR REPLACE FUNCTION public.reporting_latest_status_rows(p_status text)
RETURNS TABLE (
    order_id bigint /*key_type*/, status_id bigint, status text, status_created timestamptz,
    status_since timestamptz
)
LANGUAGE sql
STABLE
AS $rows$
WITH st AS MATERIALIZED (
    SELECT s.generation, s.needs_full_recompute AS needed FROM public.reporting_snapshot_state AS s
),
tail AS MATERIALIZED (
    SELECT p.order_id FROM public.reporting_pending_changes AS p
)
SELECT v.order_id, v.status_id, v.status::text, v.status_created, v.status_since
FROM reporting.order_latest_status AS v
WHERE (p_status IS NULL OR v.status = p_status)
  AND NOT (SELECT needed FROM st)
  AND NOT EXISTS (
      SELECT FROM public.reporting_overlayorder AS ov
      WHERE ov.generation = (SELECT generation FROM st) AND ov.order_id = v.order_id
  )
  AND v.order_id NOT IN (SELECT t.order_id FROM tail AS t)
UNION ALL
SELECT ov.order_id, ov.status_id, ov.status::text, ov.status_created, ov.status_since
FROM public.reporting_overlayorder AS ov
WHERE ov.generation = (SELECT generation FROM st)
  AND ov.status IS NOT NULL
  AND (p_status IS NULL OR ov.status = p_status)
  AND NOT (SELECT needed FROM st)
  AND ov.order_id NOT IN (SELECT t.order_id FROM tail AS t)
UNION ALL
SELECT latest.order_id, latest.id, latest.status::text, latest.created,
    CASE
        WHEN other.id IS NULL THEN (
            SELECT min(s.created) FROM public.reporting_orderstatus AS s WHERE s.order_id = latest.order_id
        )
        ELSE (
            SELECT s.created FROM public.reporting_orderstatus AS s
            WHERE s.order_id = latest.order_id AND (s.created, s.id) > (other.created, other.id)
            ORDER BY s.created, s.id
            LIMIT 1
        )
    END
FROM tail AS t
CROSS JOIN LATERAL (
    SELECT s.order_id, s.id, s.status, s.created
    FROM public.reporting_orderstatus AS s
    WHERE s.order_id = t.order_id
    ORDER BY s.created DESC, s.id DESC
    LIMIT 1
) AS latest
LEFT JOIN LATERAL (
    SELECT s.id, s.created
    FROM public.reporting_orderstatus AS s
    WHERE s.order_id = latest.order_id AND s.status <> latest.status
    ORDER BY s.created DESC, s.id DESC
    LIMIT 1
) AS other ON true
WHERE (p_status IS NULL OR latest.status = p_status)
  AND NOT (SELECT needed FROM st)
UNION ALL
SELECT everything.order_id, everything.id, everything.status::text, everything.created, everything.status_since
FROM (
    -- As order_latest_status.sql computes it.
    SELECT DISTINCT ON (h.order_id) h.order_id, h.id, h.status, h.created,
        max(h.created) FILTER (WHERE h.starts_run) OVER (PARTITION BY h.order_id) AS status_since
    FROM (
        SELECT s.order_id, s.id, s.status, s.created,
            s.status IS DISTINCT FROM lead(s.status) OVER (
                PARTITION BY s.order_id ORDER BY s.created DESC, s.id DESC
            ) AS starts_run
        FROM public.reporting_orderstatus AS s
    ) AS h
    ORDER BY h.order_id, h.created DESC, h.id DESC
) AS everything
WHERE (p_status IS NULL OR everything.status = p_status)
  AND (SELECT needed FROM st)
$rows$
