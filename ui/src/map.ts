// The convoy map (Leaflet). Markers are vector circles, so they show even when no
// tile is available; tiles come from the shell (`backend.mapTileUrl`), which serves
// them from the device's tile cache or the tile server, so the areas already seen
// still draw in a dead zone.

import L from "leaflet";
import type { UserId } from "./backend";
import type { MemberPosition, Regroup } from "./session-state";

/** A tile layer: a Leaflet URL template and the attribution its server asks for (plain text). */
export interface MapTiles {
  url: string;
  attribution: string;
}

/** Plain text as HTML (Leaflet writes an attribution as HTML: the setting is the user's text). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What the convoy decided, drawn over the cars. */
export interface ConvoyOverlay {
  /** Groups of cars travelling together: each is joined by a line. */
  together: readonly (readonly UserId[])[];
  regroup: Pick<Regroup, "latitude" | "longitude"> | null;
}

const NO_OVERLAY: ConvoyOverlay = { together: [], regroup: null };

export class ConvoyMap {
  private map: L.Map | null = null;
  private layer: L.TileLayer | null = null;
  private readonly markers = new Map<number, L.CircleMarker>();
  private groups: L.Polyline[] = [];
  private meeting: L.CircleMarker | null = null;
  /** Markers when the view was last fitted: refit when a car joins the map. */
  private fittedTo = 0;

  /** `tiles`: null for no tile server (cars on a blank map). */
  constructor(private readonly el: HTMLElement, private tiles: MapTiles | null = null) {}

  private ensure(): L.Map {
    if (this.map) return this.map;
    const map = L.map(this.el, { keyboard: true, attributionControl: true, zoomControl: true }).setView([47.0, 8.0], 5);
    this.map = map;
    this.addLayer();
    return map;
  }

  private addLayer(): void {
    if (!this.map || !this.tiles) return;
    this.layer = L.tileLayer(this.tiles.url, { maxZoom: 19, attribution: escapeHtml(this.tiles.attribution), className: "convoy-tiles" }).addTo(this.map);
  }

  /** Another tile server (or none), at once: the view and the cars stay. */
  setTiles(tiles: MapTiles | null): void {
    this.tiles = tiles;
    this.layer?.remove();
    this.layer = null;
    this.addLayer();
  }

  update(
    points: readonly MemberPosition[],
    names: (userId: number) => string,
    me: number | null,
    overlay: ConvoyOverlay = NO_OVERLAY,
  ): void {
    const map = this.ensure();
    // A car that stopped sharing leaves the map rather than stay as a stale marker.
    for (const [user, m] of this.markers) {
      if (!points.some((p) => p.userId === user)) {
        m.remove();
        this.markers.delete(user);
      }
    }
    for (const p of points) {
      const label = names(p.userId);
      let m = this.markers.get(p.userId);
      if (!m) {
        m = L.circleMarker([p.latitude, p.longitude], {
          radius: 9,
          weight: 3,
          color: p.userId === me ? "#e63946" : "#1d3557",
          fillOpacity: 0.8,
        }).addTo(map);
        this.markers.set(p.userId, m);
      }
      m.setLatLng([p.latitude, p.longitude]);
      m.bindTooltip(label, { permanent: true, direction: "top" });
    }
    this.drawOverlay(map, points, overlay);
    const fit: [number, number][] = points.map((p) => [p.latitude, p.longitude]);
    if (overlay.regroup) fit.push([overlay.regroup.latitude, overlay.regroup.longitude]);
    const drawn = this.markers.size + (this.meeting ? 1 : 0);
    if (fit.length > 0 && drawn > this.fittedTo) {
      this.fittedTo = drawn;
      map.fitBounds(L.latLngBounds(fit).pad(0.5), { maxZoom: 14, animate: false });
    }
  }

  /** Lines joining the cars of each group travelling together, and the meeting point. */
  private drawOverlay(map: L.Map, points: readonly MemberPosition[], overlay: ConvoyOverlay): void {
    for (const g of this.groups) g.remove();
    this.groups = [];
    for (const group of overlay.together) {
      const at = group
        .map((u) => points.find((p) => p.userId === u))
        .filter((p): p is MemberPosition => p !== undefined)
        .map((p) => [p.latitude, p.longitude] as [number, number]);
      if (at.length < 2) continue;
      // Not interactive: the cars stay the map's only targets.
      this.groups.push(L.polyline(at, { color: "#2a9d8f", weight: 6, opacity: 0.7, dashArray: "8 6", interactive: false, className: "together-line" }).addTo(map));
    }
    const r = overlay.regroup;
    if (!r) {
      this.meeting?.remove();
      this.meeting = null;
      return;
    }
    if (!this.meeting) {
      this.meeting = L.circleMarker([r.latitude, r.longitude], {
        radius: 12,
        weight: 4,
        color: "#f4a261",
        fillColor: "#fff",
        fillOpacity: 0.9,
        interactive: false,
        className: "regroup-marker",
      }).addTo(map);
      this.meeting.bindTooltip("Meeting point", { permanent: true, direction: "bottom" });
    }
    this.meeting.setLatLng([r.latitude, r.longitude]);
  }

  invalidate(): void {
    this.map?.invalidateSize();
  }

  destroy(): void {
    this.map?.remove();
    this.map = null;
    this.layer = null;
    this.markers.clear();
    this.groups = [];
    this.meeting = null;
  }
}
