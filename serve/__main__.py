"""`python -m serve`: the command-line entry point."""

from serve.cli import main

raise SystemExit(main())
