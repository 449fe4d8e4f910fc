"""`python -m rag_gateway.cli`: the console script without installing it."""

import sys

from rag_gateway.cli.main import main

sys.exit(main())
