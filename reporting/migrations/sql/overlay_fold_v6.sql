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
-- v3: the key's type is written bigint and a /*key_type*/ comment: migrate deploys it as
-- bigint; a declared source whose keys are of another type (uuid) has it
-- deployed with that type instead (reporting/source_sql.py).
-- Its temporary tables live as long as the session: one made for keys of
-- another type is made again.
-- v4: status_since, when each folded order entered its current status (as the
-- tail of order_latest_status_live.sql finds it), kept in the overlay. Keys
-- without rows count under status NULL: reporting_overlaycount and
-- reporting_overlaydaily keep them as no_rows = true (and status ''), since a
-- primary key cannot hold NULL (see reporting/models.py). A temporary table an
-- earlier version made in this session (without status_since) is made again.
-- v5: the folded orders' transitions are deleted by the row ids that one index
-- lookup per order finds, not by "order_id = ANY (array)" on the table: on
-- PostgreSQL 15 that plan read the whole generation whenever the table was a few
-- dozen pages (its cost model prices ten index probes above such a scan).
-- v6: in three functions, so that a compaction can hand the overlay on to its new
-- generation before it commits (reporting/services/handover.py, overlay_handover()):
-- reporting_overlay_fold_tables() makes this session's work tables, and
-- reporting_overlay_fold_apply() writes what they hold into a generation's
-- overlay. reporting_overlay_fold() fills them from the tail and the history and
-- applies them, as before; the handover fills them from the overlay of the
-- generation it replaces.
CREATE OR REPLACE FUNCTION public.reporting_overlay_fold_tables()
RETURNS void
LANGUAGE plpgsql
AS $tables$
BEGIN
    -- Made in an earlier call of this session, for keys of another type: made again.
    IF (
        SELECT a.atttypid FROM pg_attribute AS a
        WHERE a.attrelid = to_regclass('pg_temp.reporting_fold_orders') AND a.attname = 'order_id'
    ) IS DISTINCT FROM pg_typeof(NULL::bigint /*key_type*/)::oid OR NOT EXISTS (
        SELECT FROM pg_attribute AS a
        WHERE a.attrelid = to_regclass('pg_temp.reporting_fold_orders') AND a.attname = 'status_since'
    ) THEN
        DROP TABLE IF EXISTS pg_temp.reporting_fold_orders, pg_temp.reporting_fold_transitions;
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS reporting_fold_orders (
        order_id bigint /*key_type*/ PRIMARY KEY,
        in_overlay boolean,
        existed boolean,
        status_then text,
        day_then date,
        exists_now boolean,
        status_id bigint,
        status text,
        status_created timestamptz,
        day date,
        status_since timestamptz
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS reporting_fold_transitions (
        status_id bigint,
        order_id bigint /*key_type*/,
        from_status text,
        to_status text,
        created timestamptz,
        week date,
        since_first interval
    ) ON COMMIT DELETE ROWS;
END
$tables$;

-- Write the work tables into the overlay of generation gen: the per-status,
-- per-day and per-transition deltas (now minus then), the orders' transitions and
-- latest statuses, and the fold's row with its snapshot (snap, taken at snap_at)
-- and the changes it took in (n_changes). prune: also delete the overlays of
-- other generations (a fold does; the handover, in the compaction's transaction,
-- must not write rows that folds of the old generation may still be writing).
CREATE OR REPLACE FUNCTION public.reporting_overlay_fold_apply(
    gen bigint, snap text, snap_at timestamptz, n_changes bigint, prune boolean, OUT overlay_orders bigint
)
LANGUAGE plpgsql
AS $apply$
#variable_conflict use_column
DECLARE
    added bigint;
    stale boolean := false;
    analyzed real;
BEGIN
    IF EXISTS (SELECT FROM pg_temp.reporting_fold_orders) THEN
        -- Status NULL: the orders without rows (GROUP BY puts every NULL in one group),
        -- stored as no_rows.
        INSERT INTO public.reporting_overlaycount AS t (generation, no_rows, status, orders)
        SELECT gen, d.status IS NULL, coalesce(d.status, ''), sum(d.n)
        FROM (
            SELECT f.status_then AS status, -1 AS n
            FROM pg_temp.reporting_fold_orders AS f WHERE f.existed
            UNION ALL
            SELECT f.status, 1 FROM pg_temp.reporting_fold_orders AS f WHERE f.exists_now
        ) AS d
        GROUP BY d.status
        HAVING sum(d.n) <> 0
        ON CONFLICT (generation, no_rows, status) DO UPDATE SET orders = t.orders + excluded.orders;

        INSERT INTO public.reporting_overlaydaily AS t (generation, day, no_rows, status, orders)
        SELECT gen, d.day, d.status IS NULL, coalesce(d.status, ''), sum(d.n)
        FROM (
            SELECT f.day_then AS day, f.status_then AS status, -1 AS n
            FROM pg_temp.reporting_fold_orders AS f WHERE f.existed AND f.day_then IS NOT NULL
            UNION ALL
            SELECT f.day, f.status, 1 FROM pg_temp.reporting_fold_orders AS f WHERE f.exists_now
        ) AS d
        GROUP BY d.day, d.status
        HAVING sum(d.n) <> 0
        ON CONFLICT (generation, day, no_rows, status) DO UPDATE SET orders = t.orders + excluded.orders;

        INSERT INTO public.reporting_overlaytransitiondaily AS t (generation, day, from_status, to_status, transitions)
        SELECT gen, d.day, d.from_status, d.to_status, sum(d.n)
        FROM (
            -- What the orders had then: the overlay's rows, or the views' for the others.
            -- One index range per folded order, whatever the statistics say (see the
            -- DELETE below).
            SELECT (x.created AT TIME ZONE 'UTC')::date AS day, x.from_status, x.to_status, -1 AS n
            FROM pg_temp.reporting_fold_orders AS f
            CROSS JOIN LATERAL (
                SELECT x.created, x.from_status, x.to_status
                FROM public.reporting_overlaytransition AS x
                WHERE x.generation = gen AND x.order_id = f.order_id
                OFFSET 0
            ) AS x
            WHERE f.in_overlay
            UNION ALL
            SELECT (x.created AT TIME ZONE 'UTC')::date, x.from_status, x.to_status, -1
            FROM pg_temp.reporting_fold_orders AS f
            CROSS JOIN LATERAL (
                SELECT x.created, x.from_status, x.to_status
                FROM reporting.order_status_transitions AS x
                WHERE x.order_id = f.order_id
                OFFSET 0
            ) AS x
            WHERE NOT f.in_overlay
            UNION ALL
            SELECT (n.created AT TIME ZONE 'UTC')::date, n.from_status, n.to_status, 1
            FROM pg_temp.reporting_fold_transitions AS n
        ) AS d
        GROUP BY d.day, d.from_status, d.to_status
        HAVING sum(d.n) <> 0
        ON CONFLICT (generation, day, from_status, to_status)
        DO UPDATE SET transitions = t.transitions + excluded.transitions;

        -- The folded orders' rows, found as above by one index range per order and
        -- deleted by their row ids (a TID scan). Joined, or as "order_id = ANY
        -- (array)", PostgreSQL may read the whole generation instead: its
        -- statistics lag behind the overlay (right after a compaction they say the
        -- new generation is empty, and autovacuum is busy with the big tables; at
        -- 10 M orders that cost 350 ms a fold), and PostgreSQL 15 prices a scan of
        -- a small table below the array's index probes. Nothing else writes these
        -- rows while this fold holds its lock, so their row ids stay put.
        DELETE FROM public.reporting_overlaytransition AS x
        WHERE x.ctid = ANY (ARRAY(
            SELECT y.ctid
            FROM pg_temp.reporting_fold_orders AS f
            CROSS JOIN LATERAL (
                SELECT y.ctid FROM public.reporting_overlaytransition AS y
                WHERE y.generation = gen AND y.order_id = f.order_id
                OFFSET 0
            ) AS y
            WHERE f.in_overlay
        ));
        INSERT INTO public.reporting_overlaytransition
            (generation, status_id, order_id, from_status, to_status, created, week, since_first)
        SELECT gen, n.status_id, n.order_id, n.from_status, n.to_status, n.created, n.week, n.since_first
        FROM pg_temp.reporting_fold_transitions AS n;

        INSERT INTO public.reporting_overlayorder AS t
            (generation, order_id, exists_now, status_id, status, status_created, day, status_since)
        SELECT gen, f.order_id, f.exists_now, f.status_id, f.status, f.status_created, f.day,
            f.status_since
        FROM pg_temp.reporting_fold_orders AS f
        ON CONFLICT (generation, order_id) DO UPDATE SET
            exists_now = excluded.exists_now,
            status_id = excluded.status_id,
            status = excluded.status,
            status_created = excluded.status_created,
            day = excluded.day,
            status_since = excluded.status_since;
    END IF;

    SELECT count(*) INTO added FROM pg_temp.reporting_fold_orders AS f WHERE NOT f.in_overlay;
    INSERT INTO public.reporting_fold AS t (generation, snapshot, snapshot_at, folds, orders, changes, daily_exact)
    VALUES (
        gen, snap, snap_at, 1, added, n_changes,
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
    -- Only when there are some: "generation <> g" reads a whole table, and the
    -- overlay holds up to REPORTING_COMPACT_OVERLAY_ORDERS orders, so doing it on
    -- every fold would make each fold cost what the overlay holds, not what changed.
    -- A generation has overlay rows only if it has a reporting_fold row: the fold
    -- that writes them writes that row, and they are deleted together, here.
    IF prune AND EXISTS (SELECT FROM public.reporting_fold AS x WHERE x.generation <> gen) THEN
        DELETE FROM public.reporting_overlayorder AS x WHERE x.generation <> gen;
        DELETE FROM public.reporting_overlaytransition AS x WHERE x.generation <> gen;
        DELETE FROM public.reporting_overlaycount AS x WHERE x.generation <> gen;
        DELETE FROM public.reporting_overlaydaily AS x WHERE x.generation <> gen;
        DELETE FROM public.reporting_overlaytransitiondaily AS x WHERE x.generation <> gen;
        DELETE FROM public.reporting_fold AS x WHERE x.generation <> gen;
        stale := true;
    END IF;

    -- Statistics that follow the overlay. Every plan that reads the overlay (the
    -- fold's, the real-time reads') is made from them, and autovacuum, busy with
    -- the big tables, may leave them minutes behind: right after a compaction they
    -- describe the old generation, and the planner takes the new one for empty
    -- while it grows to thousands of orders (then it read a whole generation to
    -- find a few orders). So the fold analyzes the two large overlay tables itself
    -- when a generation was replaced or the overlay has doubled since their last
    -- analysis: a few times per generation. SKIP_LOCKED: never wait for autovacuum.
    SELECT c.reltuples INTO analyzed FROM pg_class AS c WHERE c.oid = 'public.reporting_overlayorder'::regclass;
    IF stale OR overlay_orders > 2 * greatest(analyzed, 0) + 1000 THEN
        ANALYZE (SKIP_LOCKED) public.reporting_overlayorder, public.reporting_overlaytransition;
    END IF;
END
$apply$;

CREATE OR REPLACE FUNCTION public.reporting_overlay_fold(
    OUT generation bigint, OUT orders bigint, OUT changes bigint, OUT overlay_orders bigint, OUT outcome text
)
LANGUAGE plpgsql
AS $fold$
#variable_conflict use_column
DECLARE
    st record;
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

    PERFORM public.reporting_overlay_fold_tables();
    INSERT INTO pg_temp.reporting_fold_orders
    SELECT p.order_id, p.in_overlay, p.existed, p.status_then, p.day_then,
           o.id IS NOT NULL, latest.id, latest.status, latest.created, (o.created AT TIME ZONE 'UTC')::date,
           -- When it entered that status: the row after the latest row of another
           -- status, or its first row if it has none.
           CASE
               WHEN latest.id IS NULL THEN NULL
               WHEN other.id IS NULL THEN (
                   SELECT min(s.created) FROM public.reporting_orderstatus AS s WHERE s.order_id = p.order_id
               )
               ELSE (
                   SELECT s.created FROM public.reporting_orderstatus AS s
                   WHERE s.order_id = p.order_id AND (s.created, s.id) > (other.created, other.id)
                   ORDER BY s.created, s.id
                   LIMIT 1
               )
           END
    FROM public.reporting_pending_changes AS p
    -- Lookups by key, as LATERAL subqueries that OFFSET 0 keeps from being
    -- flattened into joins: how many orders the tail holds is a guess before it
    -- runs, and a bad one must not turn this into a scan of the orders. The same
    -- for every lookup below.
    LEFT JOIN LATERAL (
        SELECT o.id, o.created FROM public.reporting_order AS o WHERE o.id = p.order_id OFFSET 0
    ) AS o ON true
    LEFT JOIN LATERAL (
        SELECT s.id, s.status::text AS status, s.created
        FROM public.reporting_orderstatus AS s
        WHERE s.order_id = p.order_id
        ORDER BY s.created DESC, s.id DESC
        LIMIT 1
    ) AS latest ON o.id IS NOT NULL
    LEFT JOIN LATERAL (
        SELECT s.id, s.created
        FROM public.reporting_orderstatus AS s
        WHERE s.order_id = p.order_id AND s.status <> latest.status
        ORDER BY s.created DESC, s.id DESC
        LIMIT 1
    ) AS other ON latest.id IS NOT NULL;
    GET DIAGNOSTICS n_orders = ROW_COUNT;
    IF n_orders > 0 THEN
        ANALYZE pg_temp.reporting_fold_orders;
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
            CROSS JOIN LATERAL (
                SELECT s.id, s.order_id, s.status, s.created
                FROM public.reporting_orderstatus AS s
                WHERE s.order_id = f.order_id
                OFFSET 0
            ) AS s
            WINDOW w AS (PARTITION BY s.order_id ORDER BY s.created, s.id)
        ) AS h
        WHERE h.from_status <> h.to_status;
    END IF;

    SELECT coalesce(sum(coalesce(cardinality(c.order_ids), 1)), 0) INTO n_changes
    FROM public.reporting_orderchange AS c
    -- Not visible in the previous fold's snapshot, as views_sql/pending_changes.sql finds them.
    WHERE c.xid >= pg_snapshot_xmax(st.fold_snapshot)
       OR c.xid = ANY (ARRAY(SELECT pg_snapshot_xip(st.fold_snapshot)));

    -- transaction_timestamp() is taken before this transaction's snapshot: everything
    -- committed before it is folded in.
    overlay_orders := public.reporting_overlay_fold_apply(
        st.generation, pg_current_snapshot()::text, transaction_timestamp(), n_changes, true
    );
    orders := n_orders;
    changes := n_changes;
    outcome := 'ok';
END
$fold$
