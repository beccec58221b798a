"""Service discovery on the deploy side: the registrar sidecar (S1) and the traffic
steps of a release (L3, L6)."""
