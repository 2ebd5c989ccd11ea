"""The unit tier's shared settings.

``make mutation`` (docs/testing.md) runs the unit tests once per mutant with
``--hypothesis-profile=mutation``: a property test still tries its examples, but a failing one is not
shrunk (a kill needs a failure, not the smallest one) and no example has a deadline, so a slow
mutant counts as killed by mutmut's own time limit rather than by a flaky deadline.
"""

from __future__ import annotations

from hypothesis import Phase, settings

settings.register_profile(
    "mutation",
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    print_blob=False,
)
