"""Use cases: what the API and the CLI do, built on the store and the projections."""
