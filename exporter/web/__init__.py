"""The HTTP side: routes, the guard (basic auth, rate limit, headers), the web configuration
file, and the threaded server with TLS."""
