-- The latest status of every order, exact at query time, in three parts:
--   1. the materialized view reporting.order_latest_status (as of its refresh),
--      but for the orders changed since (in the overlay or the tail);
--   2. the overlay (reporting_overlayorder): those orders as of the latest fold,
--      but for the orders changed since;
--   3. the tail (reporting_pending_changes): the orders changed since that fold,
--      computed live, one index lookup each;
-- and 4. the latest rows of the status history itself, only when the change log
-- cannot say what changed (needs_full_recompute: after a TRUNCATE, before the
-- first refresh). Same columns as the materialized view.
--
-- Written for the query BI tools send most, a page ("WHERE status = X
-- ORDER BY status_created DESC, order_id DESC LIMIT n", either direction): it
-- reads about n rows of each part (sorting every row of the status instead took
-- seconds at 10 M orders).
-- PostgreSQL merges the parts in the query's order (Merge Append) only if each
-- part delivers it, and a UNION ALL member with a WHERE or a join of its own is
-- planned apart, without the query's order. So parts 1 and 2 are plain scans of
-- one relation each, and what each keeps is decided in the outer WHERE, by
-- part, which PostgreSQL hands down to each part as a filter on its index scan
-- (part 1 looks each row up in the overlay, an index probe). Part 3 is small and
-- orders its own rows; part 4 is a function (latest_status_recomputed.sql)
-- that PostgreSQL plans as costing nothing. (The snapshot state and the tail are
-- written out in each part that reads them: shared as CTEs, they cost the page
-- its Merge Append.)
--
-- v5: status_since, when the order entered its current status (the created time
-- of the first row of its final run of equal statuses: order_latest_status.sql)
-- in every part. The tail finds it from the order's index range: the latest row
-- of another status ("other"), then the row right after it, or the order's first
-- row when it never had another status. That reads the final run and one row
-- more, not the order's whole history.
--
-- The price: a read of every row (no LIMIT, no range of status_created) makes
-- one overlay probe per row, a few times slower than a hash join; and while
-- part 4 runs, any read recomputes every order. The selectors' whole lists and
-- point lookups read reporting_latest_status_rows() instead, and counts have
-- their own view (order_status_counts_live).
SELECT u.order_id, u.status_id, u.status, u.status_created, u.status_since
FROM (
    SELECT 1 AS part, NULL::bigint AS generation, v.order_id, v.status_id, v.status, v.status_created,
        v.status_since
    FROM reporting.order_latest_status AS v
    UNION ALL
    SELECT 2, ov.generation, ov.order_id, ov.status_id, ov.status, ov.status_created, ov.status_since
    FROM public.reporting_overlayorder AS ov
    UNION ALL
    SELECT * FROM (
        SELECT 3, NULL::bigint, latest.order_id, latest.id, latest.status, latest.created,
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
        FROM public.reporting_pending_changes AS p
        CROSS JOIN LATERAL (
            SELECT s.order_id, s.id, s.status, s.created
            FROM public.reporting_orderstatus AS s
            WHERE s.order_id = p.order_id
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
        WHERE NOT (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
        ORDER BY latest.created DESC, latest.order_id DESC
    ) AS tail
    UNION ALL
    SELECT * FROM (
        SELECT 4, NULL::bigint, f.order_id, f.status_id, f.status, f.status_created, f.status_since
        FROM public.reporting_latest_status_recomputed() AS f
        WHERE (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
        ORDER BY f.status_created DESC, f.order_id DESC
    ) AS everything
) AS u
WHERE CASE u.part
    WHEN 1 THEN
        NOT (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
        AND (
            SELECT true FROM public.reporting_overlayorder AS ov
            WHERE ov.generation = (SELECT st.generation FROM public.reporting_snapshot_state AS st)
              AND ov.order_id = u.order_id
        ) IS NOT TRUE
        AND u.order_id NOT IN (SELECT p.order_id FROM public.reporting_pending_changes AS p)
    WHEN 2 THEN
        NOT (SELECT st.needs_full_recompute FROM public.reporting_snapshot_state AS st)
        AND u.generation = (SELECT st.generation FROM public.reporting_snapshot_state AS st)
        AND u.status IS NOT NULL
        AND u.order_id NOT IN (SELECT p.order_id FROM public.reporting_pending_changes AS p)
    ELSE true
END
