import sys

from keyfix.cli import main

sys.exit(main())
