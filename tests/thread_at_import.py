"""A module that starts a thread when imported, as numpy's OpenBLAS does on most machines: the warm
launcher must refuse to preload it (tests/integration/test_warm_start.py)."""

import threading
import time

threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
