"""``python -m musicml.train``: the training CLI (also under torchrun); see ``musicml.train.cli``."""

import sys

from musicml.train.cli import main

sys.exit(main())
