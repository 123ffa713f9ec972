-- One asset across venues: the funding rate normalized to 8 hours, in basis points, so Binance (paid
-- every 8 h) and Hyperliquid (paid hourly) compare directly. Neutral is about 1 bp; annualized alongside.
SELECT
    f.bucket                                                   AS minute,
    f.venue,
    f.symbol,
    f.asset,
    round((f.funding_8h * 1e4)::numeric, 3)::float8            AS funding_8h_bps,
    round((f.funding_annualized * 100)::numeric, 1)::float8    AS funding_annualized_pct,
    f.next_funding_ts
FROM ops.derivs_features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
  AND f.asset = {{asset}}
  AND f.funding_8h IS NOT NULL
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
ORDER BY f.bucket, f.venue
