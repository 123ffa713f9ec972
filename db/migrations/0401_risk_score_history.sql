-- Lets a live pass take its trailing baselines from the minutes already scored instead of
-- re-aggregating an hour of raw ticks every minute (under the Apache license features are views).
ALTER TABLE ops.risk_scores ADD COLUMN mid double precision;              -- mid at minute close
ALTER TABLE ops.risk_scores ADD COLUMN last_update_ts timestamptz;        -- newest book/trade update seen by minute end
COMMENT ON COLUMN ops.risk_scores.freshness_s IS
    'seconds from the last update to minute end, capped at the look-back + 60 s (a lower bound when capped)';
