-- The scores of one minute with the metrics rules can watch (SYMBOL_METRICS in jobs/rules.py).
SELECT venue, symbol, {symbol_metrics}
FROM ops.risk_scores
WHERE bucket = $1
ORDER BY venue, symbol
