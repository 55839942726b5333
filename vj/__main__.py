"""`python -m vj` runs the `vj` command (handy from a checkout that is not pip-installed)."""

from vj.cli import main

raise SystemExit(main())
