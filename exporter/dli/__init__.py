"""The DLI side: the API's schema, credentials, one call (transport), and reading a target.

Nothing here knows of scrapes, metrics or the HTTP server; :class:`exporter.dli.api.DliApi`
is what the layers above use.
"""
