"""Old module path, kept for imports that predate the package: the code is :mod:`minionerec.sid.rqvae`."""
from minionerec.sid.rqvae import *  # noqa: F401,F403
from minionerec.sid.rqvae import __all__  # noqa: F401
