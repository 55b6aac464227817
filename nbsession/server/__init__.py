"""The jupyter-server extension: docker-agent's session API over HTTP and SSE (SPEC 2-3).

Everything here is transport: handlers parse a request, call the ``SessionManager`` and map
its named exceptions to status codes. No rule about sessions lives in this package.
"""
