// Revocation stores: where logouts and "log out everywhere" are kept, so that they hold on every instance.
// A store only keeps and reads revocations; what they mean (auth_time comparisons, TTLs) is the plugin's.

/** What a store knows of one token's session and user. */
export interface RevocationState {
  /** The session was revoked (logout, `revokeSession`). */
  sessionRevoked: boolean
  /** The user's sessions that started at or before this time (seconds since epoch) are revoked (`revokeUser`). */
  userRevokedAt: number | undefined
}

/** One live session of a user, as `app.tokenCookie.listSessions(sub)` gives it. Times in seconds since epoch. */
export interface SessionInfo {
  sid: string
  /** Login time (`auth_time`). */
  authTime: number
  /** The last login or renewal: exact to `renewAfter × maxAge`. */
  lastSeenAt: number
  /** When the session ends whatever happens: the absolute cap of a sliding session, else its `exp`. */
  expiresAt: number
  /** The login request's `User-Agent`, at most 256 characters, or `null`. */
  userAgent: string | null
}

/** How many sessions a store lists per user: past it, the session that ends soonest leaves the list (it stays valid). */
export const maxListedSessions = 100

/**
 * A revocation store. Every method may reject (the store is down); the plugin times calls out after
 * `storeTimeout` and fails closed (503) unless `failOpen` is set.
 */
export interface RevocationStore {
  /**
   * Reads the revocations of session `sid` and, when given, user `sub`: in one round trip. A store that knows at
   * once (a replica in memory) may answer synchronously, and throw when it cannot tell: no promise, no timeout.
   */
  check: (sid: string, sub: string | undefined) => RevocationState | Promise<RevocationState>
  /** Revokes session `sid` for `ttl` seconds (the rest of its lifetime). */
  revokeSession: (sid: string, ttl: number) => Promise<void>
  /** Revokes the sessions of `sub` that started at or before `at` (seconds since epoch), for `ttl` seconds. */
  revokeUser: (sub: string, at: number, ttl: number) => Promise<void>
  /**
   * Lists a login, or moves the `lastSeenAt` of a listed one (keeping its `authTime` and `userAgent`). Optional,
   * with `listSessions`: a store without them has no "where you're signed in".
   */
  recordSession?: (sub: string, session: SessionInfo) => Promise<void>
  /** The listed sessions of `sub` that are not revoked and have not ended, in any order. */
  listSessions?: (sub: string) => Promise<SessionInfo[]>
  /** Optional: called at registration, and `app.ready()` waits for it (a replica loads its revocations). */
  ready?: () => Promise<void>
  /** Optional: called when the app closes (a replica stops reading and closes its connection). */
  close?: () => Promise<void>
}

export interface MemoryStoreOptions {
  /** Most revocations kept at once (sessions and users together); must exceed the live revoked sessions. */
  max?: number
  /** Told once when `max` is reached and entries are evicted early. */
  onEvict?: (message: string) => void
}

interface Entry {
  /** For users: the revocation time, seconds; for sessions: 0. */
  at: number
  /** When the entry can go, milliseconds since epoch. */
  expiresAt: number
}

/**
 * A bounded store in this process's memory: for one instance and for tests.
 * Entries expire with the sessions they revoke; at `max`, those that expire soonest go first.
 */
export function memoryStore ({ max = 100_000, onEvict = (message) => process.emitWarning(message) }: MemoryStoreOptions = {}): RevocationStore {
  if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('memoryStore: max must be a positive integer')
  const revocations = memoryRevocations(max, onEvict)
  const { read, write } = revocations
  const lists = memorySessionLists(max, (sid, sub, authTime) => {
    const userRevokedAt = read(`u:${sub}`)?.at
    return read(`s:${sid}`) !== undefined || (userRevokedAt !== undefined && authTime <= userRevokedAt)
  })
  return {
    async check (sid, sub) {
      return { sessionRevoked: read(`s:${sid}`) !== undefined, userRevokedAt: sub === undefined ? undefined : read(`u:${sub}`)?.at }
    },
    async revokeSession (sid, ttl) {
      write(`s:${sid}`, 0, ttl)
    },
    async revokeUser (sub, at, ttl) {
      write(`u:${sub}`, at, ttl)
      lists.live(sub)
    },
    async recordSession (sub, session) {
      lists.record(sub, session)
    },
    async listSessions (sub) {
      return [...(lists.live(sub)?.values() ?? [])].map((session) => ({ ...session }))
    }
  }
}

/** Revocations by key (`s:<sid>`, `u:<sub>`), bounded by `max`. */
function memoryRevocations (max: number, onEvict: (message: string) => void) {
  const entries = new Map<string, Entry>()
  let warned = false

  function read (key: string): Entry | undefined {
    const entry = entries.get(key)
    if (entry !== undefined && entry.expiresAt <= Date.now()) {
      entries.delete(key)
      return undefined
    }
    return entry
  }

  function makeRoom (): void {
    const now = Date.now()
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
    if (entries.size < max) return
    if (!warned) {
      warned = true
      onEvict(`fastify-token-cookie: memoryStore is full (max ${max}); revocations that expire soonest are dropped early`)
    }
    // Drop the soonest-expiring tenth at once, so a full store does not sort on every write.
    const byExpiry = [...entries].sort(([, a], [, b]) => a.expiresAt - b.expiresAt)
    for (const [key] of byExpiry.slice(0, Math.max(1, Math.floor(max / 10)))) entries.delete(key)
  }

  function write (key: string, at: number, ttl: number): void {
    const expiresAt = Date.now() + ttl * 1000
    const existing = read(key)
    if (existing === undefined && entries.size >= max) makeRoom()
    // A revocation only ever widens: the later time and the longer life win.
    entries.set(key, { at: Math.max(at, existing?.at ?? at), expiresAt: Math.max(expiresAt, existing?.expiresAt ?? expiresAt) })
  }

  return { read, write }
}

/** Each user's listed sessions (at most `maxListedSessions`), for at most `max` users. */
function memorySessionLists (max: number, isRevoked: (sid: string, sub: string, authTime: number) => boolean) {
  const sessions = new Map<string, Map<string, SessionInfo>>()

  /** The user's listed sessions, less those that ended or were revoked. */
  function live (sub: string): Map<string, SessionInfo> | undefined {
    const listed = sessions.get(sub)
    if (listed === undefined) return undefined
    const now = Date.now() / 1000
    for (const [sid, session] of listed) if (session.expiresAt <= now || isRevoked(sid, sub, session.authTime)) listed.delete(sid)
    if (listed.size === 0) sessions.delete(sub)
    return listed
  }

  function record (sub: string, session: SessionInfo): void {
    const listed = live(sub) ?? new Map<string, SessionInfo>()
    const known = listed.get(session.sid)
    listed.set(session.sid, known === undefined ? { ...session } : { ...known, lastSeenAt: session.lastSeenAt, expiresAt: session.expiresAt })
    if (listed.size > maxListedSessions) listed.delete(soonestEnding(listed))
    // Users' lists count against `max` as well: the one listed first goes first.
    if (!sessions.has(sub) && sessions.size >= max) sessions.delete(sessions.keys().next().value as string)
    sessions.set(sub, listed)
  }

  return { live, record }
}

function soonestEnding (listed: Map<string, SessionInfo>): string {
  let soonest: SessionInfo | undefined
  for (const session of listed.values()) if (soonest === undefined || session.expiresAt < soonest.expiresAt) soonest = session
  return (soonest as SessionInfo).sid
}
