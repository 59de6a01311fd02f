"""Old module path, kept for imports that predate the package: the code is :mod:`minionerec.sid.quantize`."""
from minionerec.sid.quantize import *  # noqa: F401,F403
from minionerec.sid.quantize import __all__  # noqa: F401
