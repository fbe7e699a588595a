// A minimal W3C WebDriver client (fetch only) for tauri-driver.

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export class WebDriver {
  constructor(base) {
    this.base = base;
    this.session = null;
  }

  async req(method, path, body) {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) {
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json.value ?? json).slice(0, 400)}`);
    }
    return json.value;
  }

  async start(application) {
    const v = await this.req("POST", "/session", {
      capabilities: { alwaysMatch: { "tauri:options": { application } } },
    });
    this.session = v.sessionId;
  }

  s(path) {
    return `/session/${this.session}${path}`;
  }

  async find(css) {
    const v = await this.req("POST", this.s("/element"), { using: "css selector", value: css });
    if (!v || typeof v[ELEMENT] !== "string") throw new Error(`find ${css}: unexpected answer ${JSON.stringify(v)}`);
    return v[ELEMENT];
  }

  async findAll(css) {
    const v = await this.req("POST", this.s("/elements"), { using: "css selector", value: css });
    return v.map((e) => e[ELEMENT]);
  }

  /** Scrolls the element to the middle of the view, clear of the sticky status banner. */
  async reveal(id) {
    await this.exec("arguments[0].scrollIntoView({ block: 'center' })", [{ [ELEMENT]: id }]);
    return id;
  }

  /** Runs `act` on the element `css` names; again on a fresh find if the page re-rendered it meanwhile. */
  async onElement(css, act) {
    // A screen that was just asked for may still be loading its list (the groups after
    // leaving a session): wait, bounded, for the element before acting on it.
    await waitFor(`an element ${css}`, () => this.findAll(css).then((a) => a.length > 0));
    for (let attempt = 1; ; attempt++) {
      try {
        return await act(await this.reveal(await this.find(css)));
      } catch (e) {
        if (attempt >= 3 || !String(e).includes("stale element reference")) throw e;
      }
    }
  }

  async click(css) {
    await this.onElement(css, (id) => this.req("POST", this.s(`/element/${id}/click`), {}));
  }

  async type(css, text) {
    await this.onElement(css, async (id) => {
      await this.req("POST", this.s(`/element/${id}/clear`), {});
      await this.req("POST", this.s(`/element/${id}/value`), { text });
    });
  }

  async text(css) {
    return this.req("GET", this.s(`/element/${await this.find(css)}/text`));
  }

  async attr(css, name) {
    return this.req("GET", this.s(`/element/${await this.find(css)}/attribute/${name}`));
  }

  async exec(script, args = []) {
    return this.req("POST", this.s("/execute/sync"), { script, args });
  }

  /** Runs `script` asynchronously: it calls its last argument with the result. */
  async execAsync(script, args = []) {
    return this.req("POST", this.s("/execute/async"), { script, args });
  }

  async screenshot() {
    return Buffer.from(await this.req("GET", this.s("/screenshot")), "base64");
  }

  async quit() {
    if (this.session) await this.req("DELETE", this.s("")).catch(() => undefined);
    this.session = null;
  }
}

/** Polls `probe` until it returns a truthy value; bounded by `timeoutMs`. */
export async function waitFor(what, probe, timeoutMs = 20000, everyMs = 100) {
  const start = Date.now();
  let last;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
