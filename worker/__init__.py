"""The stream processor. Importing it sets OpenMP's wait policy to PASSIVE (unless set, and
only if torch is not loaded yet): the model's threads share the cores with the worker's event
loop and tokenizer thread, and OpenMP threads that spin while waiting starve them; on a shared
CPU it also makes torch itself faster (benchmarks/results/omp_wait_policy.json)."""

import os as _os
import sys as _sys

if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
