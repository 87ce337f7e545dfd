"""Models: clusters, lifetime value, churn, lookalikes and anomalies, each explained."""
