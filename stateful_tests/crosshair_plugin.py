"""CrossHair plugin: how to make the persistent maps of an account when it hunts for bugs in fold.

CrossHair cannot make an `immutables.Map` (a C extension) symbolically, so without this it meets no
account at all. An empty map still lets it explore every integer path of fund, record_balance,
settle and set_shares; the paths through recorded outcomes and payouts are the state machines' job.
"""

from __future__ import annotations

import immutables
from crosshair import SymbolicFactory, register_type


def _empty_map(
    factory: SymbolicFactory, *type_args: object, _map: type[immutables.Map[object, object]] = immutables.Map
) -> immutables.Map[object, object]:
    # CrossHair runs a plugin's functions without their module's globals: bind the class here.
    return _map()


register_type(immutables.Map, _empty_map)
