"""Files under TOKENHOT_HOME that kernels, the server extension and the CLI all share.

Stdlib (and the client layer's errors and redaction) only: no IPython, no jupyter_server,
so every process can open the same journal safely.
"""
