"""The access-rights scenario (AC-01, AC-02, AC-10, AC-12, AC-14, AC-18, AC-24): a test patient, their
data, callers of different standing, and the journal of every access the kit made as them.

``scenario(ctx)`` builds it once per run; the ``access`` checks (conformance/checks/access_*.py) act on it.
"""

from conformance.access.journal import Access, Journal
from conformance.access.leaks import differs, hidden_in, leaked, resources_in, total_of
from conformance.access.scenario import Scenario, scenario

__all__ = ["Access", "Journal", "Scenario", "differs", "hidden_in", "leaked", "resources_in", "scenario",
           "total_of"]
