import sys

from irqmon.cli import main

sys.exit(main())
