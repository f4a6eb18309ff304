"""``python -m scheduler.cli`` runs the ``skybatch`` command."""

from scheduler.cli import main

main()
