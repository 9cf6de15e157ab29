"""Fleet schedules: deterministic (LP) and robust under ellipsoidal uncertainty (SOCP)."""
