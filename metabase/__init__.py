"""Metabase dashboards as code: card SQL and dashboard descriptions, the provisioner, the HTML report."""

# The Metabase release whose REST API the provisioner (and its test double) follows.
METABASE_VERSION = "v0.62.4"
