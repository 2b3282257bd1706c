"""`python -m admin.demo` (what `make demo` runs)."""

import sys

from admin.demo.run import main

sys.exit(main())
