"""datasette-render-markdown without its render_cell hook.

datasette-dashboards needs datasette-render-markdown for its text and descriptions (the `render_markdown` template
function and the `{% markdown %}` tag, which this keeps). Its render_cell hook, though, reads the plugin's
configuration for every cell of every page, and Datasette deep-copies the metadata for each read: a 50-row
incidents page has ~2,000 cells, 13-27 ms of a 70-140 ms page at 1M incidents (docs/performance.md). It converts
only the columns configured for it or named *_markdown, and civcas has neither, so the hook is taken out.
"""
from __future__ import annotations

import types

import datasette_render_markdown
from datasette.plugins import pm

KEPT = ("extra_template_vars", "prepare_jinja2_environment")
WITHOUT_CELLS = "datasette_render_markdown_without_render_cell"

# Datasette runs every file of the plugins folder again for each instance it creates (the tests make many):
# the swap happens once per process.
if pm.get_plugin(WITHOUT_CELLS) is None:
    if pm.is_registered(datasette_render_markdown):
        pm.unregister(datasette_render_markdown)
    without_cells = types.ModuleType(WITHOUT_CELLS)
    for name in KEPT:
        setattr(without_cells, name, getattr(datasette_render_markdown, name))
    pm.register(without_cells, name=WITHOUT_CELLS)
