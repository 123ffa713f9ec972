"""Measurement tools: throughput against the COPY ceiling, per-frame parse cost, the fault soak."""
