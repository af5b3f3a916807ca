"""trii-term: a keyboard-first trading workstation for the terminal."""

import os as _os

__version__ = "0.1.0"

# numpy's BLAS on one thread, set before numpy loads (it reads these once, as it is imported).
# The indicator kernels multiply matrices; a BLAS pool on every core made them stall whenever
# another core was busy (RSI up to 49x TA-Lib's time with the other core busy, 3.5x on one
# thread), and a trading workstation always has something else running. A value already in
# the environment is kept.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    _os.environ.setdefault(_var, "1")
del _var
