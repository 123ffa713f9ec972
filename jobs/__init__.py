"""The jobs service: risk scoring, risk events and alerting (`tower jobs`, `tower events`)."""
