"""Give datasette-cluster-map maps a sensible view when they have nothing to fit.

datasette-cluster-map 0.18.2 creates the map without a centre and only ever calls
``map.fitBounds(markers.getBounds())`` after loading the rows. When no row on the page
has valid coordinates those bounds are empty, Leaflet throws "Bounds are not valid."
and the map stays a blank grey box (simonw/datasette-cluster-map#56). With a single
point it zooms to street level (maxZoom 19), which is also unhelpful.

This plugin patches ``L.Map.prototype.fitBounds`` once Leaflet is loaded:

* empty or invalid bounds -> the configured default view plus a note in the map,
  "No coordinates to show on this page"; the container gets
  ``data-civcas-map-view="default"``;
* valid bounds -> fitted as usual, but never closer than ``max_zoom``; the container gets
  ``data-civcas-map-view="fit"``.

Either way the container also gets ``data-civcas-map-center="lat,lng"`` and
``data-civcas-map-zoom``, so a browser test can check the view.

Pages with no rows at all get no map from datasette-cluster-map (it needs the results
table), so they need nothing here.

Configuration (metadata.yml ``plugins: civcas-map:``), all optional::

    default_bounds: [[south, west], [north, east]]
    max_zoom: 12
    empty_message: "No coordinates to show on this page"
"""
from __future__ import annotations

import json

from datasette import hookimpl

PLUGIN = "civcas-map"
DEFAULTS = {
    # Syria and Iraq to Afghanistan and Pakistan.
    "default_bounds": [[23.6, 35.7], [38.8, 77.8]],
    "max_zoom": 12,
    "empty_message": "No coordinates to show on this page",
}

SCRIPT = """
(function () {
  var config = %s;
  function patch(L) {
    if (!L || !L.Map || L.Map.prototype._civcasPatched) { return; }
    var fitBounds = L.Map.prototype.fitBounds;
    var Note = L.Control.extend({
      options: {position: "topright"},
      onAdd: function () {
        var div = L.DomUtil.create("div", "civcas-map-empty leaflet-bar");
        div.style.background = "#fff";
        div.style.padding = "0.4em 0.7em";
        div.textContent = config.empty_message;
        return div;
      }
    });
    L.Map.prototype.fitBounds = function (bounds, options) {
      var container = this.getContainer();
      var valid = false;
      try { valid = L.latLngBounds(bounds).isValid(); } catch (e) { valid = false; }
      var result;
      if (!valid) {
        if (!this._civcasNote) { this._civcasNote = new Note().addTo(this); }
        container.setAttribute("data-civcas-map-view", "default");
        result = fitBounds.call(this, config.default_bounds);
      } else {
        if (this._civcasNote) { this._civcasNote.remove(); this._civcasNote = null; }
        container.setAttribute("data-civcas-map-view", "fit");
        result = fitBounds.call(this, bounds, L.extend({maxZoom: config.max_zoom}, options || {}));
      }
      // The view, for tests and for anyone inspecting the page.
      var centre = this.getCenter();
      container.setAttribute("data-civcas-map-center", centre.lat.toFixed(4) + "," + centre.lng.toFixed(4));
      container.setAttribute("data-civcas-map-zoom", String(this.getZoom()));
      return result;
    };
    L.Map.prototype._civcasPatched = true;
  }
  document.addEventListener("DOMContentLoaded", function () {
    // Load the same Leaflet module datasette-cluster-map loads, and patch it first.
    if (!document.querySelector("table.rows-and-columns")) { return; }
    if (!(window.datasette && window.datasette.leaflet)) { return; }
    import(window.datasette.leaflet.JAVASCRIPT_URL).then(function (mod) {
      patch(window.L || mod);
    });
  });
})();
"""


def map_config(datasette, database=None, table=None) -> dict:
    config = dict(DEFAULTS)
    config.update(datasette.plugin_config(PLUGIN, database=database, table=table) or {})
    return config


@hookimpl
def extra_body_script(database, table, columns, view_name, datasette):
    try:
        from datasette_cluster_map import find_columns
    except ImportError:  # pragma: no cover - the map plugin is a hard dependency
        return None
    if not find_columns(database, table, columns, view_name, datasette):
        return None
    config = map_config(datasette, database, table)
    # json.dumps does not escape "</script>": escape "<" so config text cannot end the script.
    payload = json.dumps(config).replace("<", "\\u003c")
    return SCRIPT % payload
