"""Grid models: distribution feeders (power flow, hosting capacity, losses, volt-var) and, in later issues,
frequency services, protection and resilience."""
