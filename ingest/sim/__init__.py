"""Loopback venues that speak the real Binance USD-M and Hyperliquid protocols: for tests, the demo
and the benchmark. Nothing here talks to a real venue."""
