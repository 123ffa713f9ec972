"""Live market-data connectors: venue adapters, a shared connection runtime and one shared writer."""
