"""Old module path, kept for imports that predate the package: the code is :mod:`minionerec.sid.item_text`."""
from minionerec.sid.item_text import *  # noqa: F401,F403
from minionerec.sid.item_text import __all__  # noqa: F401
