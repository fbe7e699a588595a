// Distances between cars on the map (great-circle, mean Earth radius).

const EARTH_RADIUS_M = 6_371_008.8; // IUGG mean radius

export interface LatLon {
  latitude: number;
  longitude: number;
}

export function distanceMeters(a: LatLon, b: LatLon): number {
  const rad = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * rad;
  const dLon = (b.longitude - a.longitude) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

export function formatDistance(m: number): string {
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(m < 10_000 ? 2 : 1)} km`;
}

/** Every pair, nearest first. */
export function pairwiseDistances<T extends LatLon & { userId: number }>(
  points: readonly T[],
): { a: number; b: number; meters: number }[] {
  const out: { a: number; b: number; meters: number }[] = [];
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const p = points[i];
      const q = points[j];
      if (p && q) out.push({ a: p.userId, b: q.userId, meters: distanceMeters(p, q) });
    }
  }
  return out.sort((x, y) => x.meters - y.meters);
}
