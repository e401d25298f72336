-- reporting_latest_status_page(): the orders whose latest status is p_status,
-- exact at query time, most recent status change first, keyset-paginated: the
-- rows of reporting.order_latest_status_live, read so that a page costs about
-- what it shows. Each part (the materialized view but for the changed orders,
-- the overlay but for the tail, the tail computed live) is ordered and limited
-- on its own from its index, and PostgreSQL merges them (Merge Append); a plain
-- ORDER BY ... LIMIT on the view cannot do that, because the planner plans a
-- part that needs a join without the ordering the query wants.
--
-- p_after_created, p_after_order: the page starts after this (status_created,
--   order_id); NULL for the first page.
-- p_since: only status changes at or after it; NULL for all.
-- p_limit: the page size; NULL for every row.
-- SQL and STABLE, so PostgreSQL inlines it into the caller's query.
--
-- v2: the optional bounds are written as bounds that are always there (after
-- ('infinity', the largest bigint), since '-infinity') rather than "p IS NULL OR
-- ...". Then one plan serves every call: the bounds are index conditions whatever
-- the arguments, and the selectors run it as a prepared statement, planned once
-- per connection rather than on every page (planning cost more than running).
-- A status created at 'infinity' on the order with the largest bigint id would
-- fall outside the first page; no sequence reaches that id.
-- v3: no largest key to start the first page after: the bound is
-- (coalesce(p_after_created, 'infinity'), p_after_order), and a NULL p_after_order
-- bounds by the time alone (a row comparison stops at its first unequal pair;
-- at a NULL it is NULL, so rows at exactly p_after_created are left out, as
-- "after (t, the smallest key)" would). So any type of key serves, and a time
-- window ends at a time with Cursor(until, None).
-- v3: the key's type is written bigint and a /*key_type*/ comment: migrate deploys it as
-- bigint; a declared source whose keys are of another type (uuid) has it
-- deployed with that type instead (reporting/source_sql.py).
CREATE OR REPLACE FUNCTION public.reporting_latest_status_page(
    p_status text,
    p_after_created timestamptz,
    p_after_order bigint /*key_type*/,
    p_since timestamptz,
    p_limit bigint
)
RETURNS TABLE (order_id bigint /*key_type*/, status_id bigint, status text, status_created timestamptz)
LANGUAGE sql
STABLE
AS $page$
WITH st AS MATERIALIZED (
    SELECT s.generation, s.needs_full_recompute AS needed FROM public.reporting_snapshot_state AS s
),
tail AS MATERIALIZED (
    -- Sorted, so that the lookups of the tail part walk the index in order.
    SELECT p.order_id FROM public.reporting_pending_changes AS p ORDER BY p.order_id
)
(SELECT v.order_id, v.status_id, v.status::text, v.status_created
 FROM reporting.order_latest_status AS v
 WHERE v.status = p_status
   AND (v.status_created, v.order_id) < (coalesce(p_after_created, 'infinity'), p_after_order)
   AND v.status_created >= coalesce(p_since, '-infinity')
   AND NOT (SELECT needed FROM st)
   AND NOT EXISTS (
       SELECT FROM public.reporting_overlayorder AS ov
       WHERE ov.generation = (SELECT generation FROM st) AND ov.order_id = v.order_id
   )
   AND v.order_id NOT IN (SELECT t.order_id FROM tail AS t)
 ORDER BY v.status_created DESC, v.order_id DESC
 LIMIT p_limit)
UNION ALL
(SELECT ov.order_id, ov.status_id, ov.status::text, ov.status_created
 FROM public.reporting_overlayorder AS ov
 WHERE ov.generation = (SELECT generation FROM st)
   AND ov.status = p_status
   AND (ov.status_created, ov.order_id) < (coalesce(p_after_created, 'infinity'), p_after_order)
   AND ov.status_created >= coalesce(p_since, '-infinity')
   AND NOT (SELECT needed FROM st)
   AND ov.order_id NOT IN (SELECT t.order_id FROM tail AS t)
 ORDER BY ov.status_created DESC, ov.order_id DESC
 LIMIT p_limit)
UNION ALL
(SELECT latest.order_id, latest.id, latest.status::text, latest.created
 FROM tail AS t
 CROSS JOIN LATERAL (
     SELECT s.order_id, s.id, s.status, s.created
     FROM public.reporting_orderstatus AS s
     WHERE s.order_id = t.order_id
     ORDER BY s.created DESC, s.id DESC
     LIMIT 1
 ) AS latest
 WHERE latest.status = p_status
   AND (latest.created, latest.order_id) < (coalesce(p_after_created, 'infinity'), p_after_order)
   AND latest.created >= coalesce(p_since, '-infinity')
   AND NOT (SELECT needed FROM st)
 ORDER BY latest.created DESC, latest.order_id DESC
 LIMIT p_limit)
UNION ALL
(SELECT everything.order_id, everything.id, everything.status::text, everything.created
 FROM (
     SELECT DISTINCT ON (s.order_id) s.order_id, s.id, s.status, s.created
     FROM public.reporting_orderstatus AS s
     ORDER BY s.order_id, s.created DESC, s.id DESC
 ) AS everything
 WHERE everything.status = p_status
   AND (everything.created, everything.order_id) < (coalesce(p_after_created, 'infinity'), p_after_order)
   AND everything.created >= coalesce(p_since, '-infinity')
   AND (SELECT needed FROM st)
 ORDER BY everything.created DESC, everything.order_id DESC
 LIMIT p_limit)
ORDER BY 4 DESC, 1 DESC
LIMIT p_limit
$page$
