"""``python -m musicml.train``: the training CLI (also under torchrun)."""

import sys

from musicml.train.loop import main

sys.exit(main())
