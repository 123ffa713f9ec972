-- The liquidity component of the risk score (issue 14): order-book depth within 25 bps of mid and the
-- slippage of the standard market order, from ops.depth_features_1m, each against the market's own
-- trailing median. depth_25bps and slip_bps are also the history later minutes read their baselines
-- from (like depth_notional). NULL everywhere = no depth samples for that market and minute (a venue or
-- market without full books, ingest with --no-depth): the component then scores 0 points, never an alarm.
ALTER TABLE ops.risk_scores ADD COLUMN depth_25bps double precision;
ALTER TABLE ops.risk_scores ADD COLUMN depth_25bps_drop_pct double precision;
ALTER TABLE ops.risk_scores ADD COLUMN slip_bps double precision;
ALTER TABLE ops.risk_scores ADD COLUMN liquidity_drop_pct double precision;
COMMENT ON COLUMN ops.risk_scores.depth_25bps IS
    'mean quote-currency notional within 25 bps of mid, bid + ask (ops.depth_features_1m.depth_25bps); '
    'NULL: no depth sample in the minute';
COMMENT ON COLUMN ops.risk_scores.depth_25bps_drop_pct IS
    'percent drop of depth_25bps below its trailing median (0 when at or above it); NULL without depth data or '
    'with too short a baseline';
COMMENT ON COLUMN ops.risk_scores.slip_bps IS
    'worst slippage of the minute of the standard market order (TOWER_INGEST_SLIPPAGE_NOTIONAL) vs mid, either '
    'side, bps (ops.depth_features_1m.slip_bps_max); NULL: no depth sample, or no sample could fill it';
COMMENT ON COLUMN ops.risk_scores.liquidity_drop_pct IS
    'the liquidity component''s value, percent of the market''s usual liquidity gone: the larger of '
    'depth_25bps_drop_pct and the slippage rise 1 - max(trailing median, slip_floor_bps) / slip_bps; '
    'NULL without depth data';
