"""``python -m sn46_pipelines.cli``: the ``sn46`` command without its console script."""

import sys

from . import main

sys.exit(main())
