"""The client side of rvssh: the commands people type (``rvssh open``, ``ls``, ``stop``, ``hosts``).

The commands speak the HTTP API, the same answers any client gets (409 for
a host key, 401 ``AUTH_PROMPT`` for a question), over one of two
transports: a running ``rvssh serve``, or the app itself in this process on
the same state directory (transport.py).
"""
