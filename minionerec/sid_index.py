"""Old module path, kept for imports that predate the package: the code is :mod:`minionerec.sid.index`."""
from minionerec.sid.index import *  # noqa: F401,F403
from minionerec.sid.index import __all__  # noqa: F401
