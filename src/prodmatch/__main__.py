"""`python -m prodmatch ...` = the `prodmatch` command (used by the Kaggle kernel)."""
import sys

from .cli import main

sys.exit(main())
