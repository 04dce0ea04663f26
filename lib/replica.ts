// The replica of a Redis revocation store: every live revocation in this process's memory, loaded from the index
// of live revocations (a sorted set scored by expiry) and kept current from the stream every revocation is added to.
// A check is two Map lookups. Revocations only ever widen and only leave at their expiry, so applying an entry twice,
// or a reload over what is already known, is harmless: the later time and the longer life win.
import { setTimeout as sleep } from 'node:timers/promises'
import type { RevocationState } from './store.js'

/** Where a replicating store keeps its replica: for the tests (the package exports no way to it). */
export const kReplica = Symbol('fastify-token-cookie.replica')

/** A stream reply: `[[key, [[id, [field, value, …]], …]]]`, or `null` when the block timed out. */
export type StreamReply = Array<[string, Array<[string, string[]]>]> | null

/** The commands the replica sends, on a connection of its own (it blocks on XREAD). */
export interface ReplicaConnection {
  xread: (count: 'COUNT', n: number, block: 'BLOCK', milliseconds: number, streams: 'STREAMS', key: string, id: string) => Promise<StreamReply>
  xrevrange: (key: string, end: '+', start: '-', count: 'COUNT', n: number) => Promise<Array<[string, string[]]>>
  zrangebyscore: (key: string, min: number, max: '+inf', withScores: 'WITHSCORES') => Promise<string[]>
  on: (event: 'error', listener: (error: Error) => void) => unknown
  disconnect: () => void
}

export interface ReplicaOptions {
  /** Opens the replica's own connection (the app's client, duplicated). */
  connect: () => ReplicaConnection
  indexKey: string
  streamKey: string
  /** Seconds without word from Redis after which the replica cannot tell. */
  maxLag: number
}

export interface Replica {
  /** What is known of `sid` and `sub`; throws when the replica has not heard from Redis within `maxLag`. */
  state: (sid: string, sub: string | undefined) => RevocationState
  /** Applies one index member (`s:<sid>` or `u:<at>:<sub>`) that lives until `expiresAt` (ms since epoch). */
  apply: (member: string, expiresAt: number) => void
  /** Starts reading; resolves once the revocations are loaded. */
  ready: () => Promise<void>
  /** Stops reading and closes the connection. */
  close: () => Promise<void>
  /** Revocations held (sessions and users): for tests, not part of the package's API. */
  readonly size: number
}

/** How many stream entries one read takes at most. */
const batch = 1000
/** How often expired revocations are swept out, ms: memory holds live ones and those expired since. */
const sweepEvery = 30_000

const notRevoked: RevocationState = Object.freeze({ sessionRevoked: false, userRevokedAt: undefined })

type Member = { kind: 'session', sid: string } | { kind: 'user', sub: string, at: number }

/** An index member: `s:<sid>`, or `u:<at>:<sub>` (`at` a decimal number, so the first ':' after it ends it). */
function parseMember (member: string): Member | undefined {
  if (member.startsWith('s:')) return { kind: 'session', sid: member.slice(2) }
  const end = member.indexOf(':', 2)
  const at = Number(member.slice(2, end))
  if (!member.startsWith('u:') || end === -1 || !Number.isFinite(at)) return undefined
  return { kind: 'user', sub: member.slice(end + 1), at }
}

type RevocationMaps = ReturnType<typeof revocationMaps>

/** The revocations in memory: expiry in whole seconds from `origin` (small integers, no boxed number per entry). */
function revocationMaps () {
  const origin = Date.now()
  const sessions = new Map<string, number>()
  const users = new Map<string, { at: number, until: number }>()
  const tickOf = (ms: number): number => Math.ceil((ms - origin) / 1000)
  const live = (until: number): boolean => until > (Date.now() - origin) / 1000

  function apply (member: string, expiresAt: number): void {
    const parsed = parseMember(member)
    if (parsed === undefined || !(expiresAt > Date.now())) return
    const until = tickOf(expiresAt)
    if (parsed.kind === 'session') {
      sessions.set(parsed.sid, Math.max(until, sessions.get(parsed.sid) ?? until))
      return
    }
    const known = users.get(parsed.sub)
    users.set(parsed.sub, known === undefined ? { at: parsed.at, until } : { at: Math.max(known.at, parsed.at), until: Math.max(known.until, until) })
  }

  function state (sid: string, sub: string | undefined): RevocationState {
    const session = sessions.get(sid)
    const user = sub === undefined ? undefined : users.get(sub)
    // The common case: nothing known of either, no clock read, no object made.
    if (session === undefined && user === undefined) return notRevoked
    return { sessionRevoked: session !== undefined && live(session), userRevokedAt: user !== undefined && live(user.until) ? user.at : undefined }
  }

  function sweep (): void {
    for (const [sid, until] of sessions) if (!live(until)) sessions.delete(sid)
    for (const [sub, { until }] of users) if (!live(until)) users.delete(sub)
  }

  return { apply, state, sweep, size: () => sessions.size + users.size }
}

interface ReaderTiming {
  /** How long one XREAD waits for entries, ms. */
  blockMs: number
  /** A reply this late means the connection went and came back: the stream may have been trimmed meanwhile. */
  lateMs: number
}

/**
 * The loop that keeps `maps` current: load the index, then follow the stream; after an error or a late reply,
 * load again (merged into what is known). `heard` is told each time the replica is up to date with Redis.
 */
function streamReader ({ indexKey, streamKey }: ReplicaOptions, maps: RevocationMaps, { blockMs, lateMs }: ReaderTiming, heard: () => void) {
  /** From the stream's last id on, after the whole index: an entry added in between is applied twice, harmlessly. */
  async function load (redis: ReplicaConnection): Promise<string> {
    const [last] = await redis.xrevrange(streamKey, '+', '-', 'COUNT', 1)
    const members = await redis.zrangebyscore(indexKey, Date.now(), '+inf', 'WITHSCORES')
    for (let index = 0; index < members.length; index += 2) maps.apply(members[index], Number(members[index + 1]))
    heard()
    return last?.[0] ?? '0-0'
  }

  /** One read of the stream from `cursor`; resolves to the next cursor, or `undefined` when the replica must reload. */
  async function follow (redis: ReplicaConnection, cursor: string): Promise<string | undefined> {
    const asked = performance.now()
    const reply = await redis.xread('COUNT', batch, 'BLOCK', blockMs, 'STREAMS', streamKey, cursor)
    if (performance.now() - asked > lateMs) return undefined
    const entries = reply === null ? [] : reply[0][1]
    let next = cursor
    for (const [id, fields] of entries) {
      maps.apply(fieldOf(fields, 'm'), Number(fieldOf(fields, 'e')))
      next = id
    }
    // A full batch: more may be waiting, so this is not yet word of the present.
    if (entries.length < batch) heard()
    return next
  }

  return async function run (redis: ReplicaConnection, signal: AbortSignal): Promise<void> {
    let cursor: string | undefined
    let failures = 0
    let sweepAt = Date.now() + sweepEvery
    while (!signal.aborted) {
      try {
        cursor = cursor === undefined ? await load(redis) : await follow(redis, cursor)
        failures = 0
      } catch {
        // Closed, or Redis is gone: ioredis reconnects; reload (merged with what is known) once it answers.
        cursor = undefined
        await sleep(Math.min(1000, 50 * 2 ** failures++), undefined, { ref: false, signal }).catch(() => {})
      }
      if (Date.now() >= sweepAt) {
        maps.sweep()
        sweepAt = Date.now() + sweepEvery
      }
    }
  }
}

export function createReplica (options: ReplicaOptions): Replica {
  const maps = revocationMaps()
  const maxLagMs = options.maxLag * 1000
  // Several replies within maxLag, so that one slow reply is no outage; never 0 (XREAD BLOCK 0 waits forever).
  const blockMs = Math.max(1, Math.floor(maxLagMs / 4))
  const stopping = new AbortController()
  let heardAt = -Infinity
  let reader: Promise<void> | undefined
  let connection: ReplicaConnection | undefined
  let loaded!: () => void
  const ready = new Promise<void>((resolve) => { loaded = resolve })
  const run = streamReader(options, maps, { blockMs, lateMs: blockMs + Math.min(maxLagMs, 60_000) }, () => {
    heardAt = performance.now()
    loaded()
  })
  return {
    state (sid, sub) {
      const silence = performance.now() - heardAt
      if (silence > maxLagMs) throw new Error(heardAt === -Infinity ? 'redisStore replica: not loaded (before ready, or after close)' : `redisStore replica: no word from Redis for ${Math.round(silence)} ms (maxLag ${maxLagMs} ms)`)
      return maps.state(sid, sub)
    },
    apply: maps.apply,
    ready () {
      if (reader === undefined && !stopping.signal.aborted) {
        const redis = connection = options.connect()
        // Failures are the loop's to handle (and the plugin's to log, once): no unhandled 'error' events.
        redis.on('error', () => {})
        reader = run(redis, stopping.signal)
      }
      return ready
    },
    async close () {
      stopping.abort()
      connection?.disconnect()
      await reader
      // The loop has ended: nothing hears from Redis any more.
      heardAt = -Infinity
      // An app closed before it was ready: nothing waits for a load that will not come.
      loaded()
    },
    get size () { return maps.size() }
  }
}

/** The value of `name` in a stream entry's `[field, value, …]`, or '' without it. */
function fieldOf (fields: string[], name: string): string {
  for (let index = 0; index < fields.length - 1; index += 2) if (fields[index] === name) return fields[index + 1]
  return ''
}
