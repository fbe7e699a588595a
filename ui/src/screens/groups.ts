// Groups: the ones this account is in; create, add members by username, leave,
// open the session. A hosting device shows each group's join link (text and QR code);
// a pending join link (opened or pasted) offers its group's session.

import type { Group } from "../backend";
import type { Screen } from "../app";
import { field, h, showError } from "../dom";
import { joinLabel, qrSource } from "../join";
import { plural } from "../words";

export const groupsScreen: Screen = (root, ctx) => {
  const list = h("ul", { class: "groups", "aria-label": "Your groups" });
  const error = h("p", { class: "error", role: "alert" });
  const name = h("input", { name: "group-name", required: true });
  const description = h("input", { name: "group-description" });
  const create = h("form", { class: "card inline", "aria-label": "Create a group" },
    field("New group", name), field("Description", description),
    h("button", { type: "submit", class: "primary" }, "Create group"));

  // The URL other cars reach this device at, while it hosts the session.
  let hostedUrl: string | null = null;

  /** "Invite a car": the group's join link as text (to copy) and as a QR code (to scan). */
  const invite = (g: Group): HTMLElement | null => {
    const server = hostedUrl;
    if (server === null) return null;
    const panel = h("div", { class: "invite", id: `invite-${g.id}`, "data-testid": "invite", hidden: true });
    const show = h("button", { type: "button", "data-action": "show-join-link", "aria-expanded": "false", "aria-controls": panel.id }, "Invite a car");
    show.addEventListener("click", () => {
      const open = panel.hidden;
      panel.hidden = !open;
      show.setAttribute("aria-expanded", String(open));
      if (!open || panel.childElementCount > 0) return;
      void ctx.backend.makeJoinLink(server, g.id, g.name).then((link) => {
        const text = h("input", { name: "join-link", readonly: true, value: link.link, "aria-label": `Join link of ${g.name}` });
        const copy = h("button", { type: "button", "data-action": "copy-join-link" }, "Copy link");
        const copied = h("span", { class: "muted", role: "status" });
        copy.addEventListener("click", () => {
          text.select();
          void navigator.clipboard?.writeText(link.link).then(() => (copied.textContent = "Copied"), () => (copied.textContent = "Select the link and copy it"));
        });
        panel.replaceChildren(
          h("img", { class: "qr", src: qrSource(link), alt: `QR code of the join link to ${g.name}`, width: 240, height: 240 }),
          h("p", {}, "Other cars scan this code, or open or paste the link:"),
          h("span", { class: "row" }, text, copy, copied));
      }, (err: unknown) => showError(error, err));
    });
    return h("div", {}, show, panel);
  };

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
    return h("li", { class: "group card", "data-group": g.id }, h("h2", {}, g.name), g.description ? h("p", {}, g.description) : null, count, add, h("span", { class: "row" }, open, leave), invite(g));
  };

  // A join link opened or pasted: its group's session, one button away (or why not).
  const joining = h("section", { class: "card", "aria-label": "Join link", "data-testid": "join", hidden: true });
  const showJoin = (groups: readonly Group[]): void => {
    const link = ctx.join;
    joining.hidden = !link;
    if (!link) return;
    const dismiss = h("button", { type: "button", "data-action": "dismiss-join" }, "Dismiss");
    dismiss.addEventListener("click", () => {
      ctx.join = null;
      joining.hidden = true;
    });
    const group = groups.find((g) => g.id === link.group);
    let action: HTMLElement;
    if (group) {
      action = h("button", { type: "button", class: "primary", "data-action": "open-joined" }, `Open the session of ${group.name}`);
      action.addEventListener("click", () => {
        ctx.join = null;
        ctx.go({ screen: "session", groupId: group.id, groupName: group.name });
      });
    } else {
      action = h("p", {}, link.group
        ? `You are not in this group yet: ask its host to add your username${ctx.account ? `, ${ctx.account.username}` : ""}, then open the link again.`
        : "The link names no group: open one of your groups below.");
    }
    joining.replaceChildren(h("h2", {}, `Join link: ${joinLabel(link)}`), action, dismiss);
    if (group) action.focus();
  };

  const refresh = async (): Promise<void> => {
    try {
      const groups = await ctx.backend.listGroups();
      list.replaceChildren(...groups.map(renderGroup));
      showJoin(groups);
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
    // Each group can now show its join link.
    hostedUrl = hosted.lanUrls[0] ?? null;
    if (hostedUrl !== null) void refresh();
  }, () => undefined);

  root.append(
    h("main", { class: "screen groups-screen", "data-screen": "groups" },
      h("header", { class: "row spread" },
        h("h1", { tabindex: -1 }, "Groups"),
        h("span", { class: "muted", "data-testid": "signed-in" }, ctx.account
          ? `Signed in as ${ctx.account.username}${ctx.account.tokenStore === "keyring" ? " (kept in the system keyring)" : " (kept in a private file on this device)"}`
          : ""),
        h("span", { class: "row" }, settings, signOut)),
      joining, hosting, create, error, list),
  );
  name.focus();
  void refresh();
  return () => undefined;
};
