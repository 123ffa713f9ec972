-- The ops schema holds everything the tower owns: raw ticks, feed health, features, risk.
CREATE SCHEMA IF NOT EXISTS ops;
COMMENT ON SCHEMA ops IS 'Perps ops control tower: raw market data, feed health, 1-minute features, risk';
