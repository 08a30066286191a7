// What the test provider keeps across a restart, as Pocket ID keeps it in its
// database: signing and cookie keys, users, and oidc-provider's stored models
// (sessions, grants, refresh tokens...). Without it a restarted provider would
// not know the refresh tokens it issued, and every relying party's refresh
// would end in invalid_grant: an outage would look like a mass logout.
//
// One JSON file, IDP_STATE_DIR/idp-state.json. Writes are coalesced (at most
// one every 50 ms) and flushed synchronously on exit, so SIGTERM keeps
// everything; a SIGKILL may lose the last 50 ms.

import * as fs from 'node:fs';
import * as path from 'node:path';

const FLUSH_DELAY_MS = 50;

// Models whose entries belong to a grant (revokeByGrantId ends them).
const GRANTABLE = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode',
]);

const epoch = () => Math.floor(Date.now() / 1000);

export class State {
  constructor(dir) {
    this.file = dir ? path.join(dir, 'idp-state.json') : null;
    this.keys = null;
    this.users = null;
    this.entries = new Map(); // "Model:id" -> { payload, expiresAt (ms) | null }
    this.timer = null;
    if (this.file && fs.existsSync(this.file)) {
      const saved = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      this.keys = saved.keys;
      this.users = saved.users;
      for (const [key, entry] of saved.entries) this.entries.set(key, entry);
    }
  }

  get restored() {
    return this.keys !== null;
  }

  changed() {
    if (!this.file || this.timer) return;
    this.timer = setTimeout(() => this.flush(), FLUSH_DELAY_MS);
  }

  flush() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.file) return;
    const now = Date.now();
    const entries = [...this.entries].filter(([, e]) => e.expiresAt === null || e.expiresAt > now);
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ keys: this.keys, users: this.users, entries }));
    fs.renameSync(tmp, this.file);
  }

  live(key) {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  // An oidc-provider adapter class over this state.
  adapter() {
    const state = this;
    return class StateAdapter {
      constructor(model) {
        this.model = model;
      }

      key(id) {
        return `${this.model}:${id}`;
      }

      async upsert(id, payload, expiresIn) {
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : null;
        state.entries.set(this.key(id), { payload, expiresAt });
        state.changed();
      }

      async find(id) {
        return state.live(this.key(id))?.payload;
      }

      findBy(field, value) {
        const prefix = `${this.model}:`;
        for (const key of state.entries.keys()) {
          if (!key.startsWith(prefix)) continue;
          const payload = state.live(key)?.payload;
          if (payload && payload[field] === value) return payload;
        }
        return undefined;
      }

      async findByUid(uid) {
        return this.findBy('uid', uid);
      }

      async findByUserCode(userCode) {
        return this.findBy('userCode', userCode);
      }

      async consume(id) {
        const entry = state.live(this.key(id));
        if (entry) {
          entry.payload.consumed = epoch();
          state.changed();
        }
      }

      async destroy(id) {
        state.entries.delete(this.key(id));
        state.changed();
      }

      async revokeByGrantId(grantId) {
        for (const [key, entry] of state.entries) {
          const model = key.slice(0, key.indexOf(':'));
          if (GRANTABLE.has(model) && entry.payload.grantId === grantId) state.entries.delete(key);
        }
        state.changed();
      }
    };
  }
}
