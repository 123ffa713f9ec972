-- Descriptions for every table and plain view created by the numbered migrations before this one, for
-- `\d+` in psql and Metabase's data reference (it syncs PostgreSQL comments). Conventions used throughout:
-- ts = venue (exchange) event time, recv_ts = the connector's local receive time; prices are quote
-- currency per base unit, quantities are base units, notional = price x qty in quote currency;
-- bps = 1/10,000 (1 bp = 0.01 %). Continuous aggregates are described in 0721, views in db/views/.

COMMENT ON TABLE ops.schema_migrations IS
    'What `tower migrate` applied: one row per numbered file (db/migrations, db/caggs) and per view file (db/views)';
COMMENT ON COLUMN ops.schema_migrations.name IS 'file, e.g. migrations/0003_raw_trades.sql, caggs/0100_book_1m.sql, views/features_1m.sql';
COMMENT ON COLUMN ops.schema_migrations.checksum IS 'sha256 of the file as applied; a numbered file that changed since is refused';
COMMENT ON COLUMN ops.schema_migrations.kind IS 'sql (numbered migration), continuous (continuous aggregate file) or view (db/views file)';
COMMENT ON COLUMN ops.schema_migrations.relation IS 'the relation a continuous or view file defines, e.g. ops.book_1m; NULL for plain sql files';
COMMENT ON COLUMN ops.schema_migrations.mode IS 'timescaledb.license when applied: timescale (TSL: continuous aggregate) or apache (plain view)';
COMMENT ON COLUMN ops.schema_migrations.applied_at IS 'when it was applied (a view file: last recreated)';

COMMENT ON TABLE ops.instruments IS
    'One row per venue symbol; asset groups the same underlying across venues (Binance BTCUSDT, Hyperliquid BTC, OKX BTC-USDT-SWAP)';
COMMENT ON COLUMN ops.instruments.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.instruments.symbol IS 'the venue''s own symbol, e.g. BTCUSDT, BTC, BTC-USDT-SWAP';
COMMENT ON COLUMN ops.instruments.asset IS 'base asset shared across venues, e.g. BTC: join key for cross-venue comparisons';
COMMENT ON COLUMN ops.instruments.quote IS 'quote currency prices and notionals of this symbol are in, e.g. USDT, USD';
COMMENT ON COLUMN ops.instruments.kind IS 'perp, future or spot';
COMMENT ON COLUMN ops.instruments.contract_size IS 'base units per contract (OKX ctVal, e.g. 0.01 BTC); 1 where the venue counts in base units';
COMMENT ON COLUMN ops.instruments.active IS 'true once ingested: scoring and alerts cover active instruments only';
COMMENT ON COLUMN ops.instruments.added_at IS 'when the row was added';

COMMENT ON TABLE ops.raw_trades IS
    'Every trade print as the venue reported it (hypertable, 1 h chunks on ts)';
COMMENT ON COLUMN ops.raw_trades.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.raw_trades.symbol IS 'venue symbol (see ops.instruments)';
COMMENT ON COLUMN ops.raw_trades.ts IS 'venue time: when the venue says the trade happened';
COMMENT ON COLUMN ops.raw_trades.recv_ts IS 'receive time: when the connector received the message (local clock); recv_ts - ts = latency';
COMMENT ON COLUMN ops.raw_trades.trade_id IS 'the venue''s trade id (text: formats differ per venue); NULL if the venue gives none';
COMMENT ON COLUMN ops.raw_trades.price IS 'trade price, quote currency per base unit (> 0)';
COMMENT ON COLUMN ops.raw_trades.qty IS 'trade size in base units (contracts already converted with contract_size), > 0';
COMMENT ON COLUMN ops.raw_trades.side IS 'aggressor side: buy = taker bought (lifted the ask), sell = taker sold';

COMMENT ON TABLE ops.raw_book_l1 IS
    'Every best bid/ask (L1) update (hypertable, 1 h chunks on ts); crossed books are rejected, never stored';
COMMENT ON COLUMN ops.raw_book_l1.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.raw_book_l1.symbol IS 'venue symbol (see ops.instruments)';
COMMENT ON COLUMN ops.raw_book_l1.ts IS 'venue time of the book state';
COMMENT ON COLUMN ops.raw_book_l1.recv_ts IS 'receive time (local clock); recv_ts - ts = latency';
COMMENT ON COLUMN ops.raw_book_l1.bid_px IS 'best bid price, quote currency (> 0, < ask_px)';
COMMENT ON COLUMN ops.raw_book_l1.bid_qty IS 'size at the best bid, base units';
COMMENT ON COLUMN ops.raw_book_l1.ask_px IS 'best ask price, quote currency';
COMMENT ON COLUMN ops.raw_book_l1.ask_qty IS 'size at the best ask, base units';
COMMENT ON COLUMN ops.raw_book_l1.update_id IS 'the venue''s book update id; NULL where the venue gives none (Hyperliquid bbo)';

COMMENT ON TABLE ops.connection_events IS
    'Connector connection lifecycle: connect, subscribed, disconnect, reconnect_attempt, stale, rotate, error (hypertable, 7 d chunks)';
COMMENT ON COLUMN ops.connection_events.ts IS 'local time of the event';
COMMENT ON COLUMN ops.connection_events.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.connection_events.conn_id IS 'one id per physical connection (shard + attempt)';
COMMENT ON COLUMN ops.connection_events.event IS 'connect, subscribed, disconnect, reconnect_attempt, stale (no market data for 30 s), rotate (planned replacement), error';
COMMENT ON COLUMN ops.connection_events.url IS 'WebSocket URL; NULL when not relevant to the event';
COMMENT ON COLUMN ops.connection_events.streams IS 'streams/channels subscribed on this connection; NULL when not relevant';
COMMENT ON COLUMN ops.connection_events.code IS 'WebSocket close code on disconnect (1006 = abnormal); NULL otherwise';
COMMENT ON COLUMN ops.connection_events.reason IS 'close reason or error text; NULL if none';
COMMENT ON COLUMN ops.connection_events.attempt IS 'reconnect attempt number (0 = first connect); NULL when not an attempt';
COMMENT ON COLUMN ops.connection_events.delay_s IS 'backoff before the next attempt, seconds; NULL when no retry follows';

COMMENT ON TABLE ops.feed_gaps IS
    'A hole in a feed the connector detected (id jump, reconnect, stale); open while resolved_at IS NULL';
COMMENT ON COLUMN ops.feed_gaps.id IS 'surrogate key';
COMMENT ON COLUMN ops.feed_gaps.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.feed_gaps.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.feed_gaps.stream IS 'the venue stream with the hole, e.g. aggTrade, bookTicker, trades';
COMMENT ON COLUMN ops.feed_gaps.detected_at IS 'local time the gap was detected';
COMMENT ON COLUMN ops.feed_gaps.from_id IS 'last id seen before the gap; NULL for streams without contiguous ids';
COMMENT ON COLUMN ops.feed_gaps.to_id IS 'first id seen after the gap; NULL for streams without contiguous ids';
COMMENT ON COLUMN ops.feed_gaps.missing IS 'ids missing (to_id - from_id - 1) when ids are contiguous; NULL otherwise';
COMMENT ON COLUMN ops.feed_gaps.from_ts IS 'venue time of the last message before the gap; NULL if unknown';
COMMENT ON COLUMN ops.feed_gaps.to_ts IS 'venue time of the first message after the gap; NULL if unknown or not yet resumed';
COMMENT ON COLUMN ops.feed_gaps.cause IS 'id_jump, reconnect, stale, ...';
COMMENT ON COLUMN ops.feed_gaps.resolved_at IS 'when backfilled or acknowledged; NULL = still open';

COMMENT ON TABLE ops.rejected_messages IS
    'Quarantined input: messages a connector refused (malformed, NaN/negative prices, crossed book, unknown symbol), with why (hypertable, 1 d chunks)';
COMMENT ON COLUMN ops.rejected_messages.recv_ts IS 'receive time (local clock)';
COMMENT ON COLUMN ops.rejected_messages.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.rejected_messages.stream IS 'stream/channel it came on; NULL when it could not be parsed far enough to tell';
COMMENT ON COLUMN ops.rejected_messages.symbol IS 'symbol it named; NULL when it could not be parsed far enough to tell';
COMMENT ON COLUMN ops.rejected_messages.reason IS 'why it was refused, e.g. malformed_json, crossed_book, unknown_symbol, nan_price';
COMMENT ON COLUMN ops.rejected_messages.raw IS 'the payload as received (text, not jsonb: it may not be valid JSON)';

COMMENT ON TABLE ops.risk_scores IS
    'Risk score per market and data minute, with the metric behind each component (hypertable, 1 d chunks; written by `tower jobs`)';
COMMENT ON COLUMN ops.risk_scores.bucket IS 'the minute scored: bucket start, data (venue) time';
COMMENT ON COLUMN ops.risk_scores.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.risk_scores.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.risk_scores.asset IS 'base asset from ops.instruments; NULL if the symbol has no instruments row';
COMMENT ON COLUMN ops.risk_scores.score IS '0 (calm) .. 100 (act now): 100 x (1 - prod(1 - weight x points/100)) over the components';
COMMENT ON COLUMN ops.risk_scores.top_component IS 'the component with the largest weighted points, e.g. spread, stale; NULL when no component scored';
COMMENT ON COLUMN ops.risk_scores.components IS 'jsonb per component: {"spread": {"value": .., "points": 0..100}, ...}';
COMMENT ON COLUMN ops.risk_scores.spread_bps IS 'mean L1 spread of the minute, bps: (ask - bid) / mid x 1e4; NULL with no book update';
COMMENT ON COLUMN ops.risk_scores.spread_z IS 'robust z-score of spread_bps vs the trailing median / (1.4826 x MAD); NULL with too short a baseline';
COMMENT ON COLUMN ops.risk_scores.depth_notional IS 'mean L1 depth of the minute, bid + ask notional, quote currency';
COMMENT ON COLUMN ops.risk_scores.depth_drop_pct IS 'percent drop of depth_notional below its trailing median; NULL without a baseline';
COMMENT ON COLUMN ops.risk_scores.book_imbalance IS 'mean L1 imbalance (bid_qty - ask_qty) / (bid_qty + ask_qty), -1 .. 1';
COMMENT ON COLUMN ops.risk_scores.flow_imbalance IS '(buy - sell volume) / volume, -1 .. 1; NULL with too few trades in the minute';
COMMENT ON COLUMN ops.risk_scores.realized_vol_bps IS 'stdev of 1-minute mid log returns over the volatility window, bps';
COMMENT ON COLUMN ops.risk_scores.jump_bps IS 'absolute 1-minute mid log return, bps';
COMMENT ON COLUMN ops.risk_scores.coverage IS 'share of the minute''s 60 seconds with at least one book update, 0 .. 1';
COMMENT ON COLUMN ops.risk_scores.latency_ms IS 'mean latency recv_ts - ts of the minute, ms (negative: venue clock ahead of ours)';
COMMENT ON COLUMN ops.risk_scores.divergence_bps IS 'mid vs the median mid of the other venues for the same asset, bps (signed); NULL without a fresh quote elsewhere';
COMMENT ON COLUMN ops.risk_scores.computed_at IS 'local time the row was (re)computed';
COMMENT ON COLUMN ops.risk_scores.mid IS 'mid at minute close, quote currency; NULL with no book update in the look-back';
COMMENT ON COLUMN ops.risk_scores.last_update_ts IS 'venue time of the newest book/trade update seen by minute end; NULL if none in the look-back';

COMMENT ON TABLE ops.risk_events IS
    'Risk events: pending -> firing -> resolved (or cancelled) per rule and market, on data time; at most one open per rule and market';
COMMENT ON COLUMN ops.risk_events.id IS 'surrogate key (ops.alert_outbox and ops.alert_deliveries point here)';
COMMENT ON COLUMN ops.risk_events.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.risk_events.symbol IS 'venue symbol; ''*'' for venue-wide rules (feed_down)';
COMMENT ON COLUMN ops.risk_events.rule IS 'rule name from the rules file, e.g. spread_blowout, stale_quote, feed_down';
COMMENT ON COLUMN ops.risk_events.severity IS 'info, warning or critical; only rises while the event is open';
COMMENT ON COLUMN ops.risk_events.state IS 'pending (condition holds), firing (held for_minutes), resolved (clear for clear_minutes), cancelled (cleared before firing)';
COMMENT ON COLUMN ops.risk_events.opened_at IS 'data time (minute start) the condition first held';
COMMENT ON COLUMN ops.risk_events.fired_at IS 'data time it had held long enough to fire; NULL = never fired';
COMMENT ON COLUMN ops.risk_events.resolved_at IS 'data time it had stayed clear long enough; NULL while open, and for cancelled events';
COMMENT ON COLUMN ops.risk_events.first_seen IS 'data time of the first minute the condition held (= opened_at)';
COMMENT ON COLUMN ops.risk_events.last_seen IS 'data time of the last minute the condition held';
COMMENT ON COLUMN ops.risk_events.peak_value IS 'most extreme value of the rule''s metric while open, in the metric''s unit (bps, seconds, quote currency, ...)';
COMMENT ON COLUMN ops.risk_events.last_value IS 'the metric''s value in the last minute evaluated';
COMMENT ON COLUMN ops.risk_events.threshold IS 'the threshold of the current severity, in the metric''s unit';
COMMENT ON COLUMN ops.risk_events.inhibited_by IS 'why no alert was sent, e.g. ''feed_down binance''; NULL = not inhibited';
COMMENT ON COLUMN ops.risk_events.message IS 'human-readable summary used in notifications';
COMMENT ON COLUMN ops.risk_events.last_notified_at IS 'data time of the last notification queued; NULL = never notified';
COMMENT ON COLUMN ops.risk_events.updated_at IS 'local time of the last change to the row';

COMMENT ON TABLE ops.alert_deliveries IS
    'Every attempt to deliver a notification to a sink (webhook, slack), successful or not';
COMMENT ON COLUMN ops.alert_deliveries.id IS 'surrogate key';
COMMENT ON COLUMN ops.alert_deliveries.event_id IS 'the ops.risk_events row notified about';
COMMENT ON COLUMN ops.alert_deliveries.sink IS 'webhook or slack';
COMMENT ON COLUMN ops.alert_deliveries.kind IS 'firing, escalated, resolved or reminder';
COMMENT ON COLUMN ops.alert_deliveries.attempt IS 'attempt number for this notification and sink, from 1';
COMMENT ON COLUMN ops.alert_deliveries.status IS 'sent, failed or retrying';
COMMENT ON COLUMN ops.alert_deliveries.http_status IS 'HTTP status the sink answered; NULL if no answer (timeout, connection refused)';
COMMENT ON COLUMN ops.alert_deliveries.error IS 'what went wrong; NULL when sent';
COMMENT ON COLUMN ops.alert_deliveries.created_at IS 'local time of the attempt';
COMMENT ON COLUMN ops.alert_deliveries.outbox_id IS 'the ops.alert_outbox notification attempted; NULL for rows older than the outbox';
COMMENT ON COLUMN ops.alert_deliveries.duration_ms IS 'how long the HTTP attempt took, ms; NULL for rows older than the column';

COMMENT ON TABLE ops.alert_outbox IS
    'Notifications decided by evaluation, one per (event, kind, sink): queued in the evaluation''s transaction, sent afterwards';
COMMENT ON COLUMN ops.alert_outbox.id IS 'surrogate key';
COMMENT ON COLUMN ops.alert_outbox.event_id IS 'the ops.risk_events row it is about';
COMMENT ON COLUMN ops.alert_outbox.sink IS 'webhook or slack';
COMMENT ON COLUMN ops.alert_outbox.kind IS 'firing, escalated, resolved or reminder';
COMMENT ON COLUMN ops.alert_outbox.data_time IS 'the data minute that caused it';
COMMENT ON COLUMN ops.alert_outbox.payload IS 'the event as it was at that minute (jsonb)';
COMMENT ON COLUMN ops.alert_outbox.status IS 'queued (not yet sent), sent, or failed (every attempt failed)';
COMMENT ON COLUMN ops.alert_outbox.attempts IS 'delivery attempts so far';
COMMENT ON COLUMN ops.alert_outbox.created_at IS 'local time it was queued';
COMMENT ON COLUMN ops.alert_outbox.done_at IS 'local time it was sent or given up; NULL while queued';

COMMENT ON TABLE ops.job_runs IS
    'One row per run of a `tower jobs` job (risk, deliver, heartbeat, retention): the jobs service''s heartbeat';
COMMENT ON COLUMN ops.job_runs.id IS 'surrogate key';
COMMENT ON COLUMN ops.job_runs.job IS 'risk, deliver, heartbeat, retention, ...';
COMMENT ON COLUMN ops.job_runs.started_at IS 'local time the run started';
COMMENT ON COLUMN ops.job_runs.finished_at IS 'local time it finished; NULL while running (or if the process died)';
COMMENT ON COLUMN ops.job_runs.ok IS 'true = succeeded, false = failed (see error); NULL while running';
COMMENT ON COLUMN ops.job_runs.error IS 'the error of a failed run; NULL otherwise';
COMMENT ON COLUMN ops.job_runs.detail IS 'jsonb, per job: e.g. heartbeat host, pid, risk_evaluated_through, alerts_queued';

COMMENT ON TABLE ops.job_cursors IS
    'How far each forward-only job has got, e.g. risk = the last data minute scored and evaluated';
COMMENT ON COLUMN ops.job_cursors.name IS 'cursor name, e.g. risk';
COMMENT ON COLUMN ops.job_cursors.position IS 'data time (minute start) processed through';
COMMENT ON COLUMN ops.job_cursors.updated_at IS 'local time it last moved';

COMMENT ON TABLE ops.policy_settings IS
    'Retention, compression and refresh settings per relation, under both licenses: `tower policies set` changes them, ops.apply_policies() applies them';
COMMENT ON COLUMN ops.policy_settings.relation IS 'schema-qualified relation, e.g. ops.raw_trades';
COMMENT ON COLUMN ops.policy_settings.kind IS 'hypertable or cagg (continuous aggregate under TSL; a plain view under Apache, where no policy applies)';
COMMENT ON COLUMN ops.policy_settings.source IS 'caggs: the relation aggregated; NULL for hypertables';
COMMENT ON COLUMN ops.policy_settings.bucket_width IS 'caggs: time bucket width; NULL for hypertables';
COMMENT ON COLUMN ops.policy_settings.segment_by IS 'hypertables: compression segmentby columns; NULL for caggs';
COMMENT ON COLUMN ops.policy_settings.order_by IS 'hypertables: compression orderby; NULL for caggs';
COMMENT ON COLUMN ops.policy_settings.retention IS 'drop chunks older than this; NULL = keep forever';
COMMENT ON COLUMN ops.policy_settings.compress_after IS 'compress chunks older than this (TSL only); NULL = never';
COMMENT ON COLUMN ops.policy_settings.refresh_every IS 'caggs under TSL: refresh schedule; NULL for hypertables';
COMMENT ON COLUMN ops.policy_settings.refresh_start_offset IS 'caggs: refresh window start, now - this (the most lateness picked up); NULL for hypertables';
COMMENT ON COLUMN ops.policy_settings.refresh_end_offset IS 'caggs: refresh window end, now - this (newer data is aggregated in real time); NULL for hypertables';
COMMENT ON COLUMN ops.policy_settings.updated_at IS 'local time of the last change';

COMMENT ON VIEW ops.policy_jobs IS
    'TimescaleDB policy jobs under the relation name users know (a cagg''s jobs run on its materialization hypertable); empty under Apache';
COMMENT ON COLUMN ops.policy_jobs.relation IS 'the hypertable or continuous aggregate, e.g. ops.raw_trades, ops.book_1m';
COMMENT ON COLUMN ops.policy_jobs.job_id IS 'TimescaleDB job id';
COMMENT ON COLUMN ops.policy_jobs.policy IS 'refresh_continuous_aggregate, compression or retention';
COMMENT ON COLUMN ops.policy_jobs.proc_name IS 'the job''s procedure, e.g. policy_retention';
COMMENT ON COLUMN ops.policy_jobs.schedule_interval IS 'how often the job runs';
COMMENT ON COLUMN ops.policy_jobs.config IS 'the job''s config jsonb (drop_after, compress_after, start_offset, end_offset)';
COMMENT ON COLUMN ops.policy_jobs.last_run_status IS 'Success or Failed; NULL before the first run';
COMMENT ON COLUMN ops.policy_jobs.last_run_started_at IS 'when the last run started; NULL before the first run';
COMMENT ON COLUMN ops.policy_jobs.last_run_duration IS 'how long the last run took; NULL before the first run';
COMMENT ON COLUMN ops.policy_jobs.next_start IS 'when it runs next; NULL if not scheduled';
COMMENT ON COLUMN ops.policy_jobs.total_runs IS 'runs so far';
COMMENT ON COLUMN ops.policy_jobs.total_failures IS 'failed runs so far';

COMMENT ON TABLE ops.raw_derivs IS
    'Derivatives context as the venue reported it: mark, index, funding, open interest (hypertable, 6 h chunks); a channel carrying only some fields leaves the others NULL';
COMMENT ON COLUMN ops.raw_derivs.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.raw_derivs.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.raw_derivs.ts IS 'venue time of the message';
COMMENT ON COLUMN ops.raw_derivs.recv_ts IS 'receive time (local clock)';
COMMENT ON COLUMN ops.raw_derivs.mark_px IS 'mark price, quote currency; NULL if this message did not carry it';
COMMENT ON COLUMN ops.raw_derivs.index_px IS 'index (spot reference) price, quote currency; NULL if not carried';
COMMENT ON COLUMN ops.raw_derivs.funding_rate IS 'funding rate per funding_interval, as a fraction (0.0001 = 1 bp), signed (positive: longs pay); NULL if not carried';
COMMENT ON COLUMN ops.raw_derivs.funding_interval IS 'how often funding is paid (Binance 8 h, Hyperliquid 1 h); NULL if not carried';
COMMENT ON COLUMN ops.raw_derivs.next_funding_ts IS 'venue time of the next funding payment; NULL if not carried';
COMMENT ON COLUMN ops.raw_derivs.open_interest IS 'open interest in base units (contracts converted); NULL if not carried';

COMMENT ON TABLE ops.raw_liquidations IS
    'Forced (liquidation) orders the venue published (hypertable, 1 d chunks); Binance publishes only the largest per symbol and second, so sums are a lower bound';
COMMENT ON COLUMN ops.raw_liquidations.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.raw_liquidations.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.raw_liquidations.ts IS 'venue time of the forced order';
COMMENT ON COLUMN ops.raw_liquidations.recv_ts IS 'receive time (local clock)';
COMMENT ON COLUMN ops.raw_liquidations.side IS 'the liquidation order''s side: sell closes a long, buy closes a short';
COMMENT ON COLUMN ops.raw_liquidations.price IS 'order price, quote currency';
COMMENT ON COLUMN ops.raw_liquidations.qty IS 'order size, base units';
