-- Markets whose minute $1 is incomplete (an open feed gap or low book coverage, ops.features_1m.complete):
-- market rules do not act on them unless they set fire_on_incomplete.
SELECT venue, symbol FROM ops.features_1m WHERE bucket = $1 AND NOT complete
