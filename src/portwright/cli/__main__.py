import sys

from portwright.cli import main

sys.exit(main())
