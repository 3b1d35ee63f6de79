"""The guided tour: the seed's ten UI steps, one page each, built by ui/tour/kit.page.

Importing the step modules registers their pages in tour order; app.py turns TOUR into st.Page entries.
"""
from ui.tour import cd, ci, kit, ops  # noqa: F401  (imported for the pages they register)

TOUR = [kit.PAGES[n] for n in sorted(kit.PAGES)]  # (title, page function, url path)
