"""The work budget of one resolution: upstream queries and a deadline.

A resolution and all its nested lookups share one budget, so a broken or
hostile hierarchy (glueless loops, endless referrals, silent servers)
costs a bounded number of queries and a bounded time.
"""

from dataclasses import dataclass


class ResolutionAborted(Exception):
    """The query budget or the deadline ran out: the whole resolution stops."""


@dataclass
class Budget:
    """The queries and time left to one resolution."""

    max_queries: int
    max_time: float  # seconds
    deadline: float  # on the resolver's clock
    queries: int = 0  # sent so far

    def spend_query(self, now: float) -> float:
        """Count one upstream query; return the seconds left until the deadline.

        Raises ResolutionAborted when the budget or the deadline is used up.
        """
        left = self.deadline - now
        if left <= 0:
            raise ResolutionAborted(f"resolution timed out after {self.max_time:g} s")
        if self.queries >= self.max_queries:
            raise ResolutionAborted(
                f"query budget of {self.max_queries} queries used up"
            )
        self.queries += 1
        return left
