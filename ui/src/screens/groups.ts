// Groups: the ones this account is in; create, add members by username, leave,
// open the session.

import type { Group } from "../backend";
import type { Screen } from "../app";
import { field, h, showError } from "../dom";
import { plural } from "../words";

export const groupsScreen: Screen = (root, ctx) => {
  const list = h("ul", { class: "groups", "aria-label": "Your groups" });
  const error = h("p", { class: "error", role: "alert" });
  const name = h("input", { name: "group-name", required: true });
  const description = h("input", { name: "group-description" });
  const create = h("form", { class: "card inline", "aria-label": "Create a group" },
    field("New group", name), field("Description", description),
    h("button", { type: "submit", class: "primary" }, "Create group"));

  const renderGroup = (g: Group): HTMLLIElement => {
    const member = h("input", { name: "member", placeholder: "username", "aria-label": `Add a member to ${g.name}` });
    const add = h("form", { class: "inline" }, member, h("button", { type: "submit" }, "Add member"));
    const count = h("span", { class: "muted", "data-testid": "member-count" }, plural(g.members.length, "member"));
    add.addEventListener("submit", (e) => {
      e.preventDefault();
      void ctx.backend.addMember(g.id, member.value.trim()).then(
        (updated) => {
          member.value = "";
          count.textContent = plural(updated.members.length, "member");
        },
        (err: unknown) => showError(error, err),
      );
    });
    const open = h("button", { type: "button", class: "primary", "data-action": "open-session" }, "Open session");
    open.addEventListener("click", () => ctx.go({ screen: "session", groupId: g.id, groupName: g.name }));
    // Leaving takes this account out of the group's session and map at once.
    const leave = h("button", { type: "button", "data-action": "leave-group" }, "Leave group");
    leave.addEventListener("click", () => {
      void ctx.backend.leaveGroup(g.id).then(() => refresh(), (err: unknown) => showError(error, err));
    });
    return h("li", { class: "group card", "data-group": g.id }, h("h2", {}, g.name), g.description ? h("p", {}, g.description) : null, count, add, h("span", { class: "row" }, open, leave));
  };

  const refresh = async (): Promise<void> => {
    try {
      const groups = await ctx.backend.listGroups();
      list.replaceChildren(...groups.map(renderGroup));
      if (groups.length === 0) {
        list.append(h("li", { class: "empty" }, "No groups yet: create one above and add the other cars' usernames, or ask a friend to add you to theirs."));
      }
    } catch (err: unknown) {
      showError(error, err);
    }
  };

  create.addEventListener("submit", (e) => {
    e.preventDefault();
    void ctx.backend.createGroup(name.value.trim(), description.value.trim() || undefined).then(
      () => {
        name.value = "";
        description.value = "";
        return refresh();
      },
      (err: unknown) => showError(error, err),
    );
  });

  const signOut = h("button", { type: "button" }, "Sign out");
  signOut.addEventListener("click", () => {
    void ctx.backend.logout().then(() => {
      ctx.account = null;
      ctx.go({ screen: "auth" });
    });
  });
  const settings = h("button", { type: "button" }, "Settings");
  settings.addEventListener("click", () => ctx.go({ screen: "settings", back: { screen: "groups" } }));

  // While this device hosts the session: where the other cars join, and a way to stop.
  const hosting = h("section", { class: "card", "aria-label": "Hosting", "data-testid": "hosting", hidden: true });
  void ctx.backend.appInfo().then((info) => {
    const hosted = info.hosting;
    if (!hosted) return;
    const stop = h("button", { type: "button", "data-action": "stop-hosting" }, "Stop hosting and sign out");
    stop.addEventListener("click", () => {
      void ctx.backend.stopHosting()
        .then(() => ctx.backend.logout())
        .then(() => {
          ctx.account = null;
          ctx.saveSettings({ ...ctx.settings, hosting: false });
          ctx.go({ screen: "auth" });
        }, (err: unknown) => showError(error, err));
    });
    hosting.replaceChildren(
      h("h2", {}, "This device hosts the session"),
      h("p", {}, hosted.lanUrls.length > 0
        ? "Other cars sign in with server URL:"
        : "Other cars join over this device's hotspot or network once it has one; server port:"),
      hosted.lanUrls.length > 0
        ? h("ul", { "data-testid": "lan-urls" }, ...hosted.lanUrls.map((u) => h("li", {}, h("code", {}, u))))
        : h("p", {}, h("code", {}, String(hosted.port))),
      stop);
    hosting.hidden = false;
  }, () => undefined);

  root.append(
    h("main", { class: "screen groups-screen", "data-screen": "groups" },
      h("header", { class: "row spread" },
        h("h1", { tabindex: -1 }, "Groups"),
        h("span", { class: "muted", "data-testid": "signed-in" }, ctx.account
          ? `Signed in as ${ctx.account.username}${ctx.account.tokenStore === "keyring" ? " (kept in the system keyring)" : " (kept in a private file on this device)"}`
          : ""),
        h("span", { class: "row" }, settings, signOut)),
      hosting, create, error, list),
  );
  name.focus();
  void refresh();
  return () => undefined;
};
