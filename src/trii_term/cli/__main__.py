"""`python -m trii_term.cli` keeps working now that the CLI is a package (as `python -m trii_term`)."""

from trii_term.cli import main

raise SystemExit(main())
