"""Old module path, kept for imports that predate the package: the code is :mod:`minionerec.sid.build`."""
from minionerec.sid.build import *  # noqa: F401,F403
from minionerec.sid.build import __all__  # noqa: F401
