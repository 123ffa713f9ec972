-- One risk score row; an identical re-score leaves the row (and its computed_at) untouched.
-- $1..$7 bucket, venue, symbol, asset, score, top_component, components; then one parameter per
-- stored metric, in the order of STORED_METRICS (jobs/metric_names.py), which also gives every
-- metric column list below (filled in by jobs/sqlfiles.py).
INSERT INTO ops.risk_scores AS r
    (bucket, venue, symbol, asset, score, top_component, components, {metric_columns})
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, {metric_params})
ON CONFLICT (venue, symbol, bucket) DO UPDATE SET
    asset = EXCLUDED.asset, score = EXCLUDED.score, top_component = EXCLUDED.top_component,
    components = EXCLUDED.components, {set_metrics}, computed_at = now()
WHERE (r.score, r.top_component, r.components, {r_metrics})
      IS DISTINCT FROM
      (EXCLUDED.score, EXCLUDED.top_component, EXCLUDED.components, {excluded_metrics})
