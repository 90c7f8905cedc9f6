"""`python -m cli`: the `smallcoder` command."""

import sys

from cli.main import main

sys.exit(main())
