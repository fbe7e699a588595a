// The convoy map (Leaflet). Markers are vector circles, so they show even when no
// tile server is reachable; tiles are a backdrop that may fail to load.

import L from "leaflet";
import type { MemberPosition } from "./session-state";

export class ConvoyMap {
  private map: L.Map | null = null;
  private readonly markers = new Map<number, L.CircleMarker>();
  /** Markers when the view was last fitted: refit when a car joins the map. */
  private fittedTo = 0;

  /** `tiles`: a tile URL template from the settings, or empty for no tile server. */
  constructor(private readonly el: HTMLElement, private readonly tiles: string = "") {}

  private ensure(): L.Map {
    if (this.map) return this.map;
    const map = L.map(this.el, { keyboard: true, attributionControl: true, zoomControl: true }).setView([47.0, 8.0], 5);
    if (this.tiles) {
      L.tileLayer(this.tiles, { maxZoom: 18, attribution: "© OpenStreetMap contributors" }).addTo(map);
    }
    this.map = map;
    return map;
  }

  update(points: readonly MemberPosition[], names: (userId: number) => string, me: number | null): void {
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
    if (points.length > 0 && this.markers.size > this.fittedTo) {
      this.fittedTo = this.markers.size;
      map.fitBounds(L.latLngBounds(points.map((p) => [p.latitude, p.longitude] as [number, number])).pad(0.5), { maxZoom: 14, animate: false });
    }
  }

  invalidate(): void {
    this.map?.invalidateSize();
  }

  destroy(): void {
    this.map?.remove();
    this.map = null;
    this.markers.clear();
  }
}
