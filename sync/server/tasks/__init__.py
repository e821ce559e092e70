"""Tasks (PROTOCOL.md §13): what a supervisor issues and grid workers carry out offline.

``spec`` (what a request may ask for), ``select`` (the records a task's scope and filter
give), ``store`` (issue, edit, remind, cancel, close; numbering), ``results`` (item results
from pushes, automatic done on qualifying saves, the merge rule), ``pull`` (what a pull page
carries), ``follow`` (the console's progress views and exports).
"""
