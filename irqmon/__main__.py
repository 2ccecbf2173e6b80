import sys

from irqmon.cli import main

if __name__ == "__main__":  # not when a worker process (dask, multiprocessing) imports it again
    sys.exit(main())
