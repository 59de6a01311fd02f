"""Old module path, kept for imports that predate the package: the code is :mod:`minionerec.sid.text_embed`."""
from minionerec.sid.text_embed import *  # noqa: F401,F403
from minionerec.sid.text_embed import __all__  # noqa: F401
