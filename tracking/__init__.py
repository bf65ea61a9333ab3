"""Longitudinal tracking: a person's visits over time, compared honestly.

- ``store``: :class:`HistoryStore`, one SQLite file of visits (subject, date, view, picture
  hash, the full ``Analysis``, model hashes, capture profile, overlay); versioned schema in
  ``schema``; nothing is stored without a subject id, and ``delete_subject`` erases a person.
- ``capture``: how a picture was taken (focus, exposure, magnification) and how alike two were.
- ``change``: :func:`compare` two visits: better / worse / no reliable change / not comparable
  per grade, with the probability and the reason.
- ``report`` and ``charts``: the terminal timeline and the self-contained history page.
- ``cli``: ``history ID`` and ``analyze --subject ID``.

>>> from tracking import HistoryStore, compare
>>> with HistoryStore("runs/history.sqlite") as store:                  # doctest: +SKIP
...     first, *_, last = store.visits("alice")
...     print(compare(first, last).summary())
2024-01-10 -> 2024-06-02 (consistency 0.93): worse: dandruff (0-3) P=0.97; 6 no reliable change
"""

from tracking.capture import CaptureProfile, Consistency, capture_profile, consistency
from tracking.change import BETTER, NO_RELIABLE_CHANGE, NOT_COMPARABLE, WORSE, Change, Comparison, compare
from tracking.store import HistoryError, HistoryStore, default_db_path
from tracking.visit import Visit

__all__ = [
    "BETTER",
    "NOT_COMPARABLE",
    "NO_RELIABLE_CHANGE",
    "WORSE",
    "CaptureProfile",
    "Change",
    "Comparison",
    "Consistency",
    "HistoryError",
    "HistoryStore",
    "Visit",
    "capture_profile",
    "compare",
    "consistency",
    "default_db_path",
]
