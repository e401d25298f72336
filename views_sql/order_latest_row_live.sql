-- Each order's latest row, exact at query time, with the columns of that history
-- row which REPORTING_SOURCE declares to show ("columns"): order_latest_row.sql
-- over the real-time view. A page ("WHERE status = X ORDER BY status_created DESC,
-- order_id DESC LIMIT n") reads the real-time view in order and looks up n rows.
SELECT *
FROM reporting.order_latest_status_live AS v
LEFT JOIN public.reporting_exposedcolumns AS c USING (status_id)
