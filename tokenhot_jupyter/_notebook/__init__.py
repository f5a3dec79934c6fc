"""The notebook layer: everything that needs IPython, ipywidgets or a kernel.

Magics parse a line and call one action; actions build requests for the client and hand
results to display code; the kernel session holds per-kernel state; background tasks poll
video jobs.  This layer may import the client layer and the store, never the server.
"""
