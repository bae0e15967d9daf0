"""Process start-up shared by the scripts that run the original Keras 2 stack (import this
before TensorFlow): quiet TensorFlow's C++ log, and restart the interpreter once with a fixed
string hash seed (it must be set before the interpreter starts), so that no set or dict order of
strings can change the order in which Keras 2 creates its seeded ops."""

import os
import sys
import warnings


def start() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable] + sys.argv)
    warnings.filterwarnings("ignore")
