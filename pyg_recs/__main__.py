import sys

from pyg_recs.cli import main

sys.exit(main())
