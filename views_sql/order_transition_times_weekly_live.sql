-- How long orders take to reach each status, per week (Monday, UTC) of the
-- change, exact at query time: the median and the 90th percentile of
-- since_first (the time from the order's first status row) over the changes
-- into that status that week. An order that completes twice counts twice.
-- Every declared status (REPORTING_SOURCE): readers pick theirs with a filter on
-- to_status. Filter on week: the filter reaches the index of
-- reporting.order_status_transitions, so a few weeks read only those weeks.
SELECT
    t.week,
    t.to_status,
    count(*)::bigint AS transitions,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY t.since_first) AS median,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY t.since_first) AS p90
FROM reporting.order_status_transitions_live AS t
GROUP BY t.week, t.to_status
