"""Simulation support shared by the tests and the demo: the moto gap layer, moto accounts,
and a local moto server. Never imported by the Lambda path (moto is a dev dependency)."""
