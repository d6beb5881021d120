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

The incidents table has a map of its own (``INCIDENTS_SCRIPT``), not datasette-cluster-map's, which
asks for every column of every row with labels, facets and a count (~1 s a page at 1,000,000
incidents) and stops after one page of 2,000 unless "load all" is pressed. This one asks the table's
JSON for the same filters with only the id, ``latitude`` and ``longitude`` (``_shape=arrays``,
``_nofacet=1``, ``_nocount=1``; a marker's popup is read from the incident's JSON when it is
opened), follows ``next_url`` page after page (2,000 rows each, keyset paging on the page's
sort) and stops at ``max_points`` (10,000): a longer list shows its first ``max_points`` incidents in
the list's order, with a note under the map giving the total (from the page itself) and asking to
narrow the list with filters. When it is done the container gets ``data-civcas-map-points`` (markers
drawn) and ``data-civcas-map-complete`` ("true" when every row of the list is on the map).

Configuration (metadata.yml ``plugins: civcas-map:``), all optional::

    default_bounds: [[south, west], [north, east]]
    max_zoom: 12
    empty_message: "No coordinates to show on this page"
    max_points: 10000
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
    "max_points": 10000,
}
MAP_TABLE = ("civcas", "incidents")

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
  window.civcasPatchLeaflet = patch;
  document.addEventListener("DOMContentLoaded", function () {
    // Load the same Leaflet module datasette-cluster-map loads, and patch it first.
    if (!document.querySelector("table.rows-and-columns") || config.own_map) { return; }
    if (!(window.datasette && window.datasette.leaflet)) { return; }
    import(window.datasette.leaflet.JAVASCRIPT_URL).then(function (mod) {
      patch(window.L || mod);
    });
  });
})();
"""


INCIDENTS_SCRIPT = """
(function () {
  var config = %s;
  function note(holder, text) {
    var p = holder.querySelector(".civcas-map-note");
    if (!p) { p = document.createElement("p"); p.className = "civcas-map-note"; holder.appendChild(p); }
    p.textContent = text;
    return p;
  }
  // The popup from the row's popup column (JSON: title, description, link), as text, never as HTML.
  function popupContent(row) {
    var popup = {};
    try { popup = typeof row.popup === "string" ? JSON.parse(row.popup) : (row.popup || {}); } catch (e) { popup = {}; }
    var box = document.createElement("div");
    var title = document.createElement(popup.link ? "a" : "strong");
    if (popup.link) { title.href = popup.link; }
    title.textContent = popup.title || row.incident_id;
    box.appendChild(title);
    if (popup.description) {
      box.appendChild(document.createElement("br"));
      box.appendChild(document.createTextNode(popup.description));
    }
    return box;
  }
  // The map data holds ids and coordinates only; a marker's popup is read when it is opened.
  function lazyPopup(id, database) {
    return function (layer) {
      // Leaflet calls this again on every update of the popup: read the incident once.
      if (layer._civcasPopup) { return layer._civcasPopup; }
      var box = layer._civcasPopup = document.createElement("div");
      box.className = "civcas-popup-loading";
      box.textContent = "Loading…";
      fetch("/" + database + "/incidents/" + encodeURIComponent(id) + ".json?_shape=objects")
        .then(function (r) { return r.json(); })
        .then(function (data) {
          box.className = "";
          box.textContent = "";
          box.appendChild(popupContent((data.rows && data.rows[0]) || {incident_id: id}));
        }, function () { box.className = ""; box.textContent = id; })
        .then(function () { var p = layer.getPopup(); if (p) { p.update(); } });
      return box;
    };
  }
  function valid(lat, lng) {
    return typeof lat === "number" && typeof lng === "number" && lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var holder = document.querySelector(config.container);
    if (!holder || !document.querySelector("table.rows-and-columns")) { return; }
    if (!(window.datasette && window.datasette.leaflet)) { return; }
    [window.datasette.leaflet.CSS_URL, config.markercluster_css].forEach(function (href) {
      var link = document.createElement("link"); link.rel = "stylesheet"; link.href = href;
      document.head.appendChild(link);
    });
    import(window.datasette.leaflet.JAVASCRIPT_URL).then(function (mod) {
      var L = window.L || mod;
      if (window.civcasPatchLeaflet) { window.civcasPatchLeaflet(L); }
      return import(config.markercluster_js).then(function () { return window.L || L; });
    }).then(function (L) {
      var el = document.createElement("div");
      el.className = "civcas-incidents-map";
      el.style.width = "100%%";
      el.style.height = "500px";
      holder.appendChild(el);
      var map = L.map(el, {layers: [L.tileLayer(config.tile_layer, config.tile_layer_options)]});
      var group = L.markerClusterGroup({chunkedLoading: true, maxClusterRadius: 50});
      map.addLayer(group);
      var params = new URLSearchParams(location.search);
      ["_next", "_size", "_col", "_nocol", "_facet", "_facet_size", "_labels", "_shape", "_extra"].forEach(
        function (k) { params.delete(k); });
      ["latitude", "longitude"].forEach(function (c) { params.append("_col", c); });
      params.set("_size", "max"); params.set("_nofacet", "1"); params.set("_nocount", "1");
      params.set("_shape", "arrays");
      var total = parseInt(holder.getAttribute("data-count"), 10);
      // window.CIVCAS_MAP_MAX_POINTS: a lower cap for one page (tests/test_browser.py shows the 1M case at 10k).
      var maxPoints = window.CIVCAS_MAP_MAX_POINTS || config.max_points;
      var rows = 0, drawn = 0;
      function load(url) {
        return fetch(url, {headers: {"Accept": "application/json"}}).then(function (r) {
          if (!r.ok) { throw new Error("map data: HTTP " + r.status); }
          return r.json();
        }).then(function (data) {
          var markers = [];
          var id = data.columns.indexOf("incident_id"), lat = data.columns.indexOf("latitude"),
              lng = data.columns.indexOf("longitude");
          data.rows.forEach(function (row) {
            rows += 1;
            if (valid(row[lat], row[lng])) {
              markers.push(L.marker([row[lat], row[lng]]).bindPopup(lazyPopup(row[id], config.database)));
            }
          });
          group.addLayers(markers);
          drawn += markers.length;
          if (rows === data.rows.length) { map.fitBounds(group.getBounds()); }
          var next = data.next_url;
          if (next && location.protocol === "https:") { next = next.replace(/^http:/, "https:"); }
          if (next && rows < maxPoints) {
            note(holder, "Loading the map: " + rows.toLocaleString() + " incidents so far" +
                 (total ? " of " + total.toLocaleString() : "") + "...");
            return load(next);
          }
          return Boolean(next);
        });
      }
      load(location.pathname + ".json?" + params.toString()).then(function (more) {
        map.fitBounds(group.getBounds());
        var text = drawn.toLocaleString() + (drawn === 1 ? " incident" : " incidents") + " on the map";
        if (drawn < rows) { text += " (" + (rows - drawn).toLocaleString() + " in this list have no coordinates)"; }
        if (more) {
          text = "The map shows the first " + rows.toLocaleString() + " incidents of this list" +
                 (total ? " (" + total.toLocaleString() + " in all)" : "") +
                 ", in the list's order. Narrow the list with the filters below (a country, a year, a belligerent) " +
                 "to map all of them; every row is in the CSV and JSON downloads.";
        }
        note(holder, text);
        el.setAttribute("data-civcas-map-points", String(drawn));
        el.setAttribute("data-civcas-map-complete", more ? "false" : "true");
      }).catch(function (e) {
        note(holder, "The map could not load its data (" + e.message + ").");
        el.setAttribute("data-civcas-map-points", "error");
      });
    });
  });
})();
"""


def map_config(datasette, database=None, table=None) -> dict:
    config = dict(DEFAULTS)
    config.update(datasette.plugin_config(PLUGIN, database=database, table=table) or {})
    return config


def script_payload(config: dict) -> str:
    # json.dumps does not escape "</script>": escape "<" so config text cannot end the script.
    return json.dumps(config).replace("<", "\\u003c")


def incidents_map_config(datasette) -> dict:
    config = map_config(datasette, *MAP_TABLE)
    cluster = datasette.plugin_config("datasette-cluster-map") or {}
    config.update({
        "container": cluster.get("container") or "#civcas-map",
        "tile_layer": cluster.get("tile_layer") or "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "tile_layer_options": cluster.get("tile_layer_options") or {"maxZoom": 19},
        "markercluster_js": datasette.urls.static_plugins("datasette-cluster-map", "leaflet.markercluster.min.js"),
        "markercluster_css": datasette.urls.static_plugins("datasette-cluster-map", "leaflet.markercluster.css"),
        "database": MAP_TABLE[0],
    })
    return config


@hookimpl
def extra_body_script(database, table, columns, view_name, datasette):
    if view_name == "table" and (database, table) == MAP_TABLE and columns \
            and "latitude" in columns and "longitude" in columns:
        config = map_config(datasette, database, table)
        config["own_map"] = True
        return SCRIPT % script_payload(config) + INCIDENTS_SCRIPT % script_payload(incidents_map_config(datasette))
    try:
        from datasette_cluster_map import find_columns
    except ImportError:  # pragma: no cover - the map plugin is a hard dependency
        return None
    if not find_columns(database, table, columns, view_name, datasette):
        return None
    config = map_config(datasette, database, table)
    return SCRIPT % script_payload(config)
