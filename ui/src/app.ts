// Shared context of the screens: the backend, the banner, settings and navigation.

import type { Account, Backend, JoinLink } from "./backend";
import type { Banner } from "./banner";
import type { Settings } from "./settings";

export type Route =
  | { screen: "welcome" }
  | { screen: "auth"; notice?: string }
  | { screen: "groups" }
  | { screen: "session"; groupId: string; groupName: string }
  | { screen: "settings"; back: Route };

export interface Ctx {
  backend: Backend;
  banner: Banner;
  settings: Settings;
  account: Account | null;
  /** A join link opened or pasted and not yet acted on: the groups screen offers its group. */
  join?: JoinLink | null;
  saveSettings(s: Settings): void;
  go(route: Route): void;
}

/** A screen draws into `root` and returns what to undo when it is left. */
export type Screen = (root: HTMLElement, ctx: Ctx) => () => void;
