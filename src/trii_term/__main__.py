"""`python -m trii_term` runs the same entry point as `trii-term`."""

from trii_term.cli import main

raise SystemExit(main())
