"""Entry point of a benchmark service process.

Deliberately tiny: python+ppe's spawn workers re-import this file as their
__main__, so its top level imports nothing they would not need.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bench/

# run_all.py --block-modules: these modules cannot be imported here or in the
# spawn workers (which run this file's top level too), as if not installed.
for _name in filter(None, os.environ.get("PYFEAT_BENCH_BLOCK_MODULES", "").split(",")):
    sys.modules[_name] = None  # type: ignore[assignment]

if __name__ == "__main__":
    from service.app import main

    main()
