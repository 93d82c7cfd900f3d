"""`python -m acestep_core ...` is the same as the `acestep-dcc` command."""

import sys

from acestep_core.cli import main

sys.exit(main())
