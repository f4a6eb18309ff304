"""``python -m scheduler.backends.skypilot worker ...``: the command a SkyPilot task runs."""

import sys

from scheduler.backends.skypilot._entry import main

sys.exit(main(sys.argv[1:]))
