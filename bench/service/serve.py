"""Entry point of a benchmark service process.

Deliberately tiny: python+ppe's spawn workers re-import this file as their
__main__, so its top level imports nothing they would not need.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bench/

if __name__ == "__main__":
    from service.app import main

    main()
