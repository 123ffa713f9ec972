-- Derivatives context of each scored minute, one column per risk component (funding, basis,
-- liquidations), read from the same sources as ops.derivs_features_1m. NULL = no derivatives data
-- for that market and minute (a venue without a derivs feed): scored 0 points, never as risky.
ALTER TABLE ops.risk_scores ADD COLUMN funding_8h_bps double precision;
ALTER TABLE ops.risk_scores ADD COLUMN basis_bps double precision;
ALTER TABLE ops.risk_scores ADD COLUMN liq_notional double precision;
COMMENT ON COLUMN ops.risk_scores.funding_8h_bps IS
    'funding rate normalized to 8 h, in bps (signed; the venue''s last rate of the minute)';
COMMENT ON COLUMN ops.risk_scores.basis_bps IS
    'mean mark vs index of the minute, in bps (signed)';
COMMENT ON COLUMN ops.risk_scores.liq_notional IS
    'liquidation notional of the minute, both sides, quote currency; 0 with derivs data but no liquidation';
