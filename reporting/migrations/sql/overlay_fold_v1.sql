-- reporting_overlay_fold(): fold the tail into the overlay, in time proportional
-- to the orders changed since the previous fold.
--
-- The tail (reporting_pending_changes) lists the orders changed since the
-- previous fold with what each counted as then; this computes what each counts
-- as now (one index range of the status history each), and
--   * upserts them into reporting_overlayorder (their latest status now),
--   * replaces their rows in reporting_overlaytransition (their changes now),
--   * adds now minus then to the per-status, per-day and per-transition deltas,
--   * records the fold's snapshot in reporting_fold: the next fold, and every
--     real-time read, starts its tail there.
-- It also deletes what is left of earlier generations (overlays of views that a
-- refresh has since replaced).
--
-- The caller runs it in a REPEATABLE READ transaction that first takes
-- LOCK TABLE reporting_fold IN EXCLUSIVE MODE, before any snapshot: one fold at
-- a time, each one seeing the previous one's commit. Everything it reads and
-- writes is in that one snapshot, and it commits as a whole: a fold that fails or
-- is killed leaves the previous fold in place, and the tail simply stays longer.
CREATE OR REPLACE FUNCTION public.reporting_overlay_fold(
    OUT generation bigint, OUT orders bigint, OUT changes bigint, OUT overlay_orders bigint, OUT outcome text
)
LANGUAGE plpgsql
AS $fold$
#variable_conflict use_column
DECLARE
    st record;
    added bigint;
    n_orders bigint := 0;
    n_changes bigint := 0;
BEGIN
    IF current_setting('transaction_isolation') <> 'repeatable read' THEN
        RAISE EXCEPTION 'reporting_overlay_fold() runs in a REPEATABLE READ transaction';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_locks AS l
        WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
          AND l.relation = 'public.reporting_fold'::regclass AND l.mode = 'ExclusiveLock'
    ) THEN
        RAISE EXCEPTION 'reporting_overlay_fold() needs LOCK TABLE reporting_fold IN EXCLUSIVE MODE first';
    END IF;
    SELECT s.generation, s.fold_snapshot, s.needs_full_recompute INTO st FROM public.reporting_snapshot_state AS s;
    generation := st.generation;
    orders := 0;
    changes := 0;
    overlay_orders := 0;
    IF st.generation IS NULL THEN
        outcome := 'no refresh yet';
        RETURN;
    END IF;
    IF st.needs_full_recompute THEN
        -- A TRUNCATE, or views rewritten by a plain refresh: the change log cannot
        -- say what changed. Real-time reads recompute everything until a refresh.
        outcome := 'needs a refresh';
        RETURN;
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS reporting_fold_orders (
        order_id bigint PRIMARY KEY,
        in_overlay boolean,
        existed boolean,
        status_then text,
        day_then date,
        exists_now boolean,
        status_id bigint,
        status text,
        status_created timestamptz,
        day date
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS reporting_fold_transitions (
        status_id bigint,
        order_id bigint,
        from_status text,
        to_status text,
        created timestamptz,
        week date,
        since_first interval
    ) ON COMMIT DELETE ROWS;

    INSERT INTO pg_temp.reporting_fold_orders
    SELECT p.order_id, p.in_overlay, p.existed, p.status_then, p.day_then,
           o.id IS NOT NULL, latest.id, latest.status, latest.created, (o.created AT TIME ZONE 'UTC')::date
    FROM public.reporting_pending_changes AS p
    LEFT JOIN public.reporting_order AS o ON o.id = p.order_id
    LEFT JOIN LATERAL (
        SELECT s.id, s.status::text AS status, s.created
        FROM public.reporting_orderstatus AS s
        WHERE s.order_id = p.order_id
        ORDER BY s.created DESC, s.id DESC
        LIMIT 1
    ) AS latest ON o.id IS NOT NULL;
    GET DIAGNOSTICS n_orders = ROW_COUNT;

    SELECT coalesce(sum(coalesce(cardinality(c.order_ids), 1)), 0) INTO n_changes
    FROM public.reporting_orderchange AS c
    WHERE c.xid >= pg_snapshot_xmin(st.fold_snapshot) AND NOT pg_visible_in_snapshot(c.xid, st.fold_snapshot);

    IF n_orders > 0 THEN
        ANALYZE pg_temp.reporting_fold_orders;

        INSERT INTO public.reporting_overlaycount AS t (generation, status, orders)
        SELECT st.generation, d.status, sum(d.n)
        FROM (
            SELECT coalesce(f.status_then, 'none') AS status, -1 AS n
            FROM pg_temp.reporting_fold_orders AS f WHERE f.existed
            UNION ALL
            SELECT coalesce(f.status, 'none'), 1 FROM pg_temp.reporting_fold_orders AS f WHERE f.exists_now
        ) AS d
        GROUP BY d.status
        HAVING sum(d.n) <> 0
        ON CONFLICT (generation, status) DO UPDATE SET orders = t.orders + excluded.orders;

        INSERT INTO public.reporting_overlaydaily AS t (generation, day, status, orders)
        SELECT st.generation, d.day, d.status, sum(d.n)
        FROM (
            SELECT f.day_then AS day, coalesce(f.status_then, 'none') AS status, -1 AS n
            FROM pg_temp.reporting_fold_orders AS f WHERE f.existed AND f.day_then IS NOT NULL
            UNION ALL
            SELECT f.day, coalesce(f.status, 'none'), 1 FROM pg_temp.reporting_fold_orders AS f WHERE f.exists_now
        ) AS d
        GROUP BY d.day, d.status
        HAVING sum(d.n) <> 0
        ON CONFLICT (generation, day, status) DO UPDATE SET orders = t.orders + excluded.orders;

        INSERT INTO pg_temp.reporting_fold_transitions
        SELECT h.status_id, h.order_id, h.from_status, h.to_status, h.created, h.week, h.since_first
        FROM (
            SELECT
                s.id AS status_id,
                s.order_id,
                lag(s.status::text) OVER w AS from_status,
                s.status::text AS to_status,
                s.created,
                date_trunc('week', s.created AT TIME ZONE 'UTC')::date AS week,
                s.created - first_value(s.created) OVER w AS since_first
            FROM pg_temp.reporting_fold_orders AS f
            JOIN public.reporting_orderstatus AS s ON s.order_id = f.order_id
            WINDOW w AS (PARTITION BY s.order_id ORDER BY s.created, s.id)
        ) AS h
        WHERE h.from_status <> h.to_status;

        INSERT INTO public.reporting_overlaytransitiondaily AS t (generation, day, from_status, to_status, transitions)
        SELECT st.generation, d.day, d.from_status, d.to_status, sum(d.n)
        FROM (
            -- What the orders had then: the overlay's rows, or the views' for the others.
            SELECT (x.created AT TIME ZONE 'UTC')::date AS day, x.from_status, x.to_status, -1 AS n
            FROM pg_temp.reporting_fold_orders AS f
            JOIN public.reporting_overlaytransition AS x
                ON x.generation = st.generation AND x.order_id = f.order_id
            WHERE f.in_overlay
            UNION ALL
            SELECT (x.created AT TIME ZONE 'UTC')::date, x.from_status, x.to_status, -1
            FROM pg_temp.reporting_fold_orders AS f
            JOIN reporting.order_status_transitions AS x ON x.order_id = f.order_id
            WHERE NOT f.in_overlay
            UNION ALL
            SELECT (n.created AT TIME ZONE 'UTC')::date, n.from_status, n.to_status, 1
            FROM pg_temp.reporting_fold_transitions AS n
        ) AS d
        GROUP BY d.day, d.from_status, d.to_status
        HAVING sum(d.n) <> 0
        ON CONFLICT (generation, day, from_status, to_status)
        DO UPDATE SET transitions = t.transitions + excluded.transitions;

        DELETE FROM public.reporting_overlaytransition AS x
        USING pg_temp.reporting_fold_orders AS f
        WHERE x.generation = st.generation AND x.order_id = f.order_id AND f.in_overlay;
        INSERT INTO public.reporting_overlaytransition
            (generation, status_id, order_id, from_status, to_status, created, week, since_first)
        SELECT st.generation, n.status_id, n.order_id, n.from_status, n.to_status, n.created, n.week, n.since_first
        FROM pg_temp.reporting_fold_transitions AS n;

        INSERT INTO public.reporting_overlayorder AS t
            (generation, order_id, exists_now, status_id, status, status_created, day)
        SELECT st.generation, f.order_id, f.exists_now, f.status_id, f.status, f.status_created, f.day
        FROM pg_temp.reporting_fold_orders AS f
        ON CONFLICT (generation, order_id) DO UPDATE SET
            exists_now = excluded.exists_now,
            status_id = excluded.status_id,
            status = excluded.status,
            status_created = excluded.status_created,
            day = excluded.day;
    END IF;

    SELECT count(*) INTO added FROM pg_temp.reporting_fold_orders AS f WHERE NOT f.in_overlay;
    -- transaction_timestamp() is taken before this transaction's snapshot: everything
    -- committed before it is folded in.
    INSERT INTO public.reporting_fold AS t (generation, snapshot, snapshot_at, folds, orders, changes, daily_exact)
    VALUES (
        st.generation, pg_current_snapshot()::text, transaction_timestamp(), 1, added, n_changes,
        NOT EXISTS (
            SELECT 1 FROM pg_temp.reporting_fold_orders AS f WHERE f.existed AND f.day_then IS NULL
        )
    )
    ON CONFLICT (generation) DO UPDATE SET
        snapshot = excluded.snapshot,
        snapshot_at = excluded.snapshot_at,
        folds = t.folds + 1,
        orders = t.orders + excluded.orders,
        changes = t.changes + excluded.changes,
        daily_exact = t.daily_exact AND excluded.daily_exact
    RETURNING t.orders INTO overlay_orders;

    -- The overlays of generations that a refresh has replaced: nobody reads them
    -- any more but transactions older than that refresh, which MVCC serves. (<>,
    -- not <: refresh run ids that start again, after a restore, must not revive them.)
    DELETE FROM public.reporting_overlayorder AS x WHERE x.generation <> st.generation;
    DELETE FROM public.reporting_overlaytransition AS x WHERE x.generation <> st.generation;
    DELETE FROM public.reporting_overlaycount AS x WHERE x.generation <> st.generation;
    DELETE FROM public.reporting_overlaydaily AS x WHERE x.generation <> st.generation;
    DELETE FROM public.reporting_overlaytransitiondaily AS x WHERE x.generation <> st.generation;
    DELETE FROM public.reporting_fold AS x WHERE x.generation <> st.generation;
    orders := n_orders;
    changes := n_changes;
    outcome := 'ok';
END
$fold$
