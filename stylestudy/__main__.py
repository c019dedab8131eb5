"""``python -m stylestudy`` = the ``stylestudy`` command."""

import sys

from stylestudy.cli import main

sys.exit(main())
