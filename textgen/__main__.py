"""`python -m textgen` is the `textgen` command."""

from textgen.cli import main

raise SystemExit(main())
