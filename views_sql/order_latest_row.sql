-- Each order's latest row as of the last refresh, with the columns of that history
-- row which REPORTING_SOURCE declares to show ("columns"), read from the row now
-- (a history row does not change; one deleted since shows NULLs). One index
-- lookup per row, by the history's unique row id. public.reporting_exposedcolumns
-- is generated from the declaration (reporting/source_sql.py); "*" takes its
-- columns when this view is made, and the view sync makes it anew whenever they
-- change.
SELECT *
FROM reporting.order_latest_status AS v
LEFT JOIN public.reporting_exposedcolumns AS c USING (status_id)
