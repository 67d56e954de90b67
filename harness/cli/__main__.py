"""`python -m harness.cli`: the same as the `harness` command (and `python -m harness`)."""

from harness.cli import main

raise SystemExit(main())
