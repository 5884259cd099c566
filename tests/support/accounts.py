"""The seed-case builders moved into the package (keyfix.sim.scenarios) so that `keyfix demo`
can ship them; this module re-exports them for the tests."""

from keyfix.sim.scenarios import *  # noqa: F403
from keyfix.sim.scenarios import __all__  # noqa: F401
from keyfix.sim.scenarios.asg import make_group as _group  # noqa: F401 - former private names
from keyfix.sim.scenarios.common import make_snapshot as _snapshot, register_image as _image  # noqa: F401
