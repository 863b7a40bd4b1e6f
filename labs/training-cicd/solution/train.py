"""Run the whole pipeline by hand, stage by stage, exactly as CI does:  python train.py"""

import sys

from pipeline.__main__ import STAGES, main

for stage in STAGES:
    if main([stage]) != 0:
        sys.exit(1)
