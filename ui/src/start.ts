// Builds the app into a root element: banner + the current screen.

import type { Backend } from "./backend";
import type { Ctx, Route, Screen } from "./app";
import { Banner } from "./banner";
import { h } from "./dom";
import { authScreen } from "./screens/auth";
import { groupsScreen } from "./screens/groups";
import { sessionScreen } from "./screens/session";
import { settingsScreen } from "./screens/settings";
import { welcomeScreen } from "./screens/welcome";
import { takeJoinLink } from "./join";
import { applyTheme, loadSettings, saveSettings } from "./settings";

function screenFor(route: Route): Screen {
  switch (route.screen) {
    case "welcome": return welcomeScreen;
    case "auth": return authScreen(route.notice);
    case "groups": return groupsScreen;
    case "session": return sessionScreen(route);
    case "settings": return settingsScreen(route.back);
  }
}

export async function startApp(root: HTMLElement, backend: Backend, storage: Storage = localStorage): Promise<Ctx> {
  const banner = new Banner();
  const view = h("div", { class: "view" });
  root.replaceChildren(h("a", { class: "skip", href: "#view" }, "Skip to content"), banner.el, view);
  view.id = "view";
  let cleanup: () => void = () => undefined;
  let current: Route["screen"] | null = null;
  const ctx: Ctx = {
    backend,
    banner,
    settings: loadSettings(storage),
    account: null,
    saveSettings(s) {
      ctx.settings = s;
      saveSettings(s, storage);
      applyTheme(s.theme);
    },
    go(route) {
      cleanup();
      view.replaceChildren();
      if (route.screen !== "session") {
        banner.set(navigator.onLine ? "socket" : "offline", 0, "not in a session");
      }
      current = route.screen;
      cleanup = screenFor(route)(view, ctx);
      document.title = `TrafficJamz — ${route.screen}`;
    },
  };
  applyTheme(ctx.settings.theme);
  try {
    ctx.account = await backend.currentAccount();
  } catch {
    ctx.account = null;
  }
  // A device that hosted the session hosts it again: its cars' accounts,
  // playlist and files are in the hosted server's database.
  if (ctx.settings.hosting && ctx.account) {
    try {
      const info = await backend.appInfo();
      if (!info.hosting) await backend.hostSession();
    } catch (e: unknown) {
      banner.set("offline", 0, `cannot host the session: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // Opened with a join link: its server is the one to sign in to, its group the one to open.
  const opened = await backend.launchLink().catch(() => null);
  const joined = opened ? await takeJoinLink(ctx, opened).then(() => true, (e: unknown) => {
    banner.set(navigator.onLine ? "socket" : "offline", 0, `the link the app was opened with: ${e instanceof Error ? e.message : String(e)}`);
    return false;
  }) : false;
  ctx.go(ctx.account ? { screen: "groups" } : ctx.settings.setUp || joined ? { screen: "auth" } : { screen: "welcome" });
  // A link opened while the app runs (a second launch hands it over): shown at once,
  // unless a session is open (then the groups screen offers it after leaving).
  void backend.onJoinLink((link) => {
    void takeJoinLink(ctx, link).then(() => {
      if (current !== "session") ctx.go(ctx.account ? { screen: "groups" } : { screen: "auth" });
    }, (e: unknown) => banner.set(navigator.onLine ? "socket" : "offline", 0, `join link: ${e instanceof Error ? e.message : String(e)}`));
  }).catch(() => undefined);
  // Two frames: the first screen has been laid out and painted.
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      backend.firstPaint().catch(() => undefined);
    }),
  );
  return ctx;
}
