"""HTTP: Litestar routes, the problem map, request logging."""
