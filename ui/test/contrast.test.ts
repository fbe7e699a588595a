// WCAG AA contrast of the day and night palettes (styles.css): 4.5:1 for text,
// 3:1 for the edges of controls.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const css = readFileSync(join(import.meta.dirname, "../src/styles.css"), "utf8");

/** The custom properties of the first rule whose selector is `selector`. */
function palette(selector: string): Map<string, string> {
  const at = css.indexOf(`${selector} {`);
  if (at < 0) throw new Error(`no rule ${selector}`);
  const body = css.slice(at, css.indexOf("}", at));
  return new Map([...body.matchAll(/--([a-z-]+):\s*(#[0-9a-f]{6})/g)].map((m) => [m[1]!, m[2]!]));
}

function luminance(hex: string): number {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * c[0]! + 0.7152 * c[1]! + 0.0722 * c[2]!;
}

export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

/** Text on background pairs, and the edge pairs that need 3:1. */
const TEXT: [string, string][] = [
  ["fg", "bg"], ["fg", "card"], ["muted", "card"], ["muted", "bg"], ["accent", "card"], ["accent", "bg"],
  ["on-accent", "accent"], ["hot", "card"], ["hot", "bg"], ["on-online", "online"], ["on-mesh", "mesh"],
  ["on-offline", "offline"], ["on-badge", "badge"], ["on-badge", "link-socket"], ["on-badge", "link-peer"],
  ["on-badge", "link-offline"], ["muted", "art"],
];
const EDGES: [string, string][] = [["edge", "card"], ["edge", "bg"], ["focus", "bg"], ["focus", "card"]];

describe("contrast (WCAG AA)", () => {
  for (const [name, selector] of [["day", ":root"], ["night", ':root[data-theme="dark"]']] as const) {
    it(`the ${name} palette`, () => {
      const p = palette(selector);
      const failing = [
        ...TEXT.map(([f, b]) => [f, b, 4.5] as const),
        ...EDGES.map(([f, b]) => [f, b, 3] as const),
      ].flatMap(([f, b, min]) => {
        const ratio = contrast(p.get(f) ?? "missing", p.get(b) ?? "missing");
        return ratio >= min ? [] : [`${f} on ${b}: ${ratio.toFixed(2)} < ${min}`];
      });
      expect(failing).toEqual([]);
    });
  }

  it("the night palette is the same under prefers-color-scheme", () => {
    expect(palette(':root:not([data-theme="light"])')).toEqual(palette(':root[data-theme="dark"]'));
  });

  it("catches a pair that is too pale", () => {
    expect(contrast("#777777", "#ffffff")).toBeLessThan(4.5);
    expect(contrast("#000000", "#ffffff")).toBeCloseTo(21, 5);
  });
});
