"""``python -m sn46_pipelines.modelstore ...`` is ``sn46 store ...``."""

import sys

from .cli import main

sys.exit(main())
