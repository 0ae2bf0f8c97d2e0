"""The Events page (/events/): a team's live tail, one event's JSON, the catalog of names and properties, the
volume chart, CSV export, and what its warehouse holds.

views.py is thin (a form in, one selector, a template or JSON out); selectors.py holds every read. The rule a
newcomer must know: every read takes the current team and is bounded by a page size, so another team's id is a
404 like one that does not exist, and the page stays small whatever a team sends
(docs/performance.md#catalog-caps).
"""
