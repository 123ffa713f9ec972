-- Order-book depth within 25 bps of mid per minute and market (ops.depth_features_1m, full books): quote
-- notional resting within +-25 bps, bid + ask, mean over the minute's samples; each side and the thinnest
-- moment of the thinner side alongside. Unlike the L1 depth card, a book that keeps a tight top level while
-- everything behind it is pulled shows here. Markets without full books have no rows.
SELECT
    d.bucket                                       AS minute,
    d.venue || ' ' || d.symbol                     AS market,
    d.venue,
    d.symbol,
    d.asset,
    round(d.depth_25bps::numeric, 0)::float8       AS depth_25bps,
    round(d.bid_25bps_mean::numeric, 0)::float8    AS bid_25bps_mean,
    round(d.ask_25bps_mean::numeric, 0)::float8    AS ask_25bps_mean,
    round(d.side_25bps_min::numeric, 0)::float8    AS side_25bps_min,
    d.samples
FROM ops.depth_features_1m d
WHERE d.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND d.bucket < date_trunc('minute', now())   -- complete minutes only
[[AND d.venue = {{venue}}]]
[[AND d.symbol = {{symbol}}]]
[[AND d.asset = {{asset}}]]
ORDER BY d.bucket, market
