// fastify-token-cookie/redis: a revocation store on the app's own ioredis client, shared by every instance.
//
// Keys: `<prefix>s:<sid>` (a revoked session, value '1'), `<prefix>u:<sub>` (a user's revocation time, seconds
// since epoch), `<prefix>l:<sub>` (a user's listed sessions: a hash of sid to JSON, at most 100, expiring with
// the last of them), and for replicas `<prefix>r` (the live revocations: a sorted set of `s:<sid>` and
// `u:<at>:<sub>` scored by expiry, ms) and `<prefix>x` (a stream of every revocation, its last 10 minutes). Every
// revocation writes its key, the index and the stream in one script, whether or not this store is a replica, so
// that replicas and plain stores can share one Redis. `sid` and `sub` are used as they are after the prefix: Redis keys are binary-safe, so no value can
// reach outside the prefix or collide with the other kind (`s:` and `u:` come before it). Every key is written
// with a TTL (EX, whole seconds rounded up), so Redis only ever holds live revocations.
//
// ioredis is not imported here: `client` is typed by the few commands this store sends, so the package needs
// neither ioredis nor its types at run time.
import { createHash } from 'node:crypto'
import { toSeconds, type Duration } from './lib/duration.js'
import { createReplica, kReplica, type Replica, type ReplicaConnection } from './lib/replica.js'
import { maxListedSessions, type RevocationState, type RevocationStore, type SessionInfo } from './lib/store.js'

export type { Duration } from './lib/duration.js'
export type { ReplicaConnection as RedisReplicaConnection, StreamReply as RedisStreamReply } from './lib/replica.js'
export type { RevocationState, RevocationStore, SessionInfo } from './lib/store.js'

/**
 * The commands `redisStore` sends; an ioredis `Redis` or `Cluster` has them. In Redis Cluster every key of a
 * revocation (its own, the index, the stream) must be in one slot: the prefix needs a hash tag, such as `'{tc}:'`.
 */
export interface RedisStoreClient {
  mget: (...keys: string[]) => Promise<Array<string | null>>
  hgetall: (key: string) => Promise<Record<string, string>>
  evalsha: (sha: string, numKeys: number, ...args: Array<string | number>) => Promise<unknown>
  eval: (script: string, numKeys: number, ...args: Array<string | number>) => Promise<unknown>
  /** With `replica`: a connection of its own with the same options (ioredis `duplicate()`), for a blocking XREAD. */
  duplicate?: () => ReplicaConnection
  /** `true` on an ioredis `Cluster`: then the prefix must have a hash tag. */
  isCluster?: boolean
  options?: { keyPrefix?: string }
}

export interface RedisStoreOptions {
  /** The app's ioredis client. Its own `keyPrefix`, if any, comes before `prefix`. */
  client: RedisStoreClient
  /** Prepended to every key; `'tc:'` by default. In Redis Cluster it needs a hash tag: `'{tc}:'`. */
  prefix?: string
  /**
   * `true`: this instance keeps every live revocation in memory, loaded when the app is ready and kept current from
   * a Redis stream, so a check costs no round trip. `false` by default.
   */
  replica?: boolean
  /**
   * With `replica`: after this long without word from Redis, the store counts as down (503, or `failOpen`) until it
   * has caught up. A duration: seconds, or a string such as `'250ms'`; `'1s'` by default.
   */
  maxLag?: Duration
}

/** How long the stream keeps a revocation, ms: a replica that was away longer reloads the index instead. */
const streamKeep = 600_000

// Records a revocation for replicas: in the index (trimmed of expired members) and the stream (trimmed to its last
// `keep` ms), its expiry in ms on Redis's clock, as the keys' TTLs are. Both keys expire with the last revocation:
// then a replica has nothing to catch up on, and the next revocation starts a stream of later ids.
// Returns { member, expiry }: what the replicas apply.
const recordRevocation = `local function record (index, stream, member, ttl, keep)
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local expires = now + ttl * 1000
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  redis.call('ZADD', index, expires, member)
  redis.call('XADD', stream, '*', 'm', member, 'e', expires)
  redis.call('XTRIM', stream, 'MINID', '~', now - keep)
  local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')[2]
  redis.call('PEXPIREAT', index, last)
  redis.call('PEXPIREAT', stream, last)
  return { member, tostring(expires) }
end
`

// A session revocation: SET with the TTL asked for, unless the key already lives longer.
// KEYS[1] session key, KEYS[2] index, KEYS[3] stream; ARGV[1] TTL in whole seconds, ARGV[2] the index member, ARGV[3]
// the stream's keep (ms).
const revokeSessionScript = `${recordRevocation}local ttl = tonumber(ARGV[1])
if redis.call('TTL', KEYS[1]) >= ttl then return 0 end
redis.call('SET', KEYS[1], '1', 'EX', ttl)
return record(KEYS[2], KEYS[3], ARGV[2], ttl, tonumber(ARGV[3]))`

// A user revocation never moves back in time (instances' clocks differ) nor shortens: the later time and the
// longer TTL win. KEYS[1] user key, KEYS[2] index, KEYS[3] stream; ARGV[1] time (seconds since epoch, as a decimal
// string); ARGV[2] TTL, seconds; ARGV[3] sub; ARGV[4] the stream's keep (ms). The index keeps one member per user.
const revokeUserScript = `${recordRevocation}local at = ARGV[1]
local ttl = tonumber(ARGV[2])
local old = redis.call('GET', KEYS[1])
if old and tonumber(old) and tonumber(old) > tonumber(at) then at = old end
local left = redis.call('TTL', KEYS[1])
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], at, 'EX', ttl)
if old and old ~= at then redis.call('ZREM', KEYS[2], 'u:' .. old .. ':' .. ARGV[3]) end
return record(KEYS[2], KEYS[3], 'u:' .. at .. ':' .. ARGV[3], ttl, tonumber(ARGV[4]))`

// Lists a session, or moves the lastSeenAt of a listed one; drops ended ones, and past the cap the one that ends
// soonest; the hash expires with its last session. KEYS[1] list key; ARGV[1] sid, ARGV[2] the session as JSON,
// ARGV[3] now (seconds), ARGV[4] the cap.
const recordSessionScript = `local now = tonumber(ARGV[3])
local session = cjson.decode(ARGV[2])
local known = redis.call('HGET', KEYS[1], ARGV[1])
if known then
  local old = cjson.decode(known)
  old.lastSeenAt = session.lastSeenAt
  old.expiresAt = session.expiresAt
  session = old
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(session))
local all = redis.call('HGETALL', KEYS[1])
local last, count, soonest, soonestAt = now, 0, nil, nil
for i = 1, #all, 2 do
  local ends = cjson.decode(all[i + 1]).expiresAt
  if ends <= now then redis.call('HDEL', KEYS[1], all[i]) else
    count = count + 1
    if ends > last then last = ends end
    if soonestAt == nil or ends < soonestAt then soonest, soonestAt = all[i], ends end
  end
end
if count > tonumber(ARGV[4]) then redis.call('HDEL', KEYS[1], soonest) end
if count > 0 then redis.call('EXPIRE', KEYS[1], math.ceil(last - now)) end
return count`

interface Script {
  source: string
  sha: string
}

function script (source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

const scripts = { revokeSession: script(revokeSessionScript), revokeUser: script(revokeUserScript), recordSession: script(recordSessionScript) }

function isNoScript (error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

/** EVALSHA, and EVAL when Redis does not have the script yet (after a restart or SCRIPT FLUSH). */
async function run (client: RedisStoreClient, { source, sha }: Script, keys: string[], ...args: Array<string | number>): Promise<unknown> {
  try {
    return await client.evalsha(sha, keys.length, ...keys, ...args)
  } catch (error) {
    if (!isNoScript(error)) throw error
    return await client.eval(source, keys.length, ...keys, ...args)
  }
}

/** Whole seconds, rounded up: a revocation may outlive its session by under a second, never the other way. */
function ttlSeconds (method: string, ttl: unknown): number {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) throw new TypeError(`redisStore.${method}: ttl must be a positive number of seconds`)
  return Math.ceil(ttl)
}

function checkId (method: string, name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`redisStore.${method}: ${name} must be a string`)
  return value
}

/** Whether Redis Cluster hashes keys that start with `prefix` by a tag of the prefix (`{…}`, not empty). */
function hasHashTag (prefix: string): boolean {
  const open = prefix.indexOf('{')
  return open !== -1 && prefix.indexOf('}', open + 1) > open + 1
}

type ResolvedRedisOptions = Required<Pick<RedisStoreOptions, 'client' | 'prefix'>> & { replica: false | { maxLag: number } }

function resolveRedisOptions (options: RedisStoreOptions): ResolvedRedisOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('redisStore: options must be an object: { client, prefix, replica, maxLag }')
  const { client, prefix = 'tc:', replica = false, maxLag } = options
  if (client === null || typeof client !== 'object' ||
    typeof client.mget !== 'function' || typeof client.hgetall !== 'function' || typeof client.evalsha !== 'function' || typeof client.eval !== 'function') {
    throw new TypeError('redisStore: client must be an ioredis client (with mget, hgetall, eval and evalsha), e.g. new Redis(url)')
  }
  if (typeof prefix !== 'string') throw new TypeError('redisStore: prefix must be a string')
  if (client.isCluster === true && !hasHashTag(`${client.options?.keyPrefix ?? ''}${prefix}`)) {
    throw new TypeError(`redisStore: in Redis Cluster the prefix needs a hash tag, such as '{tc}:', so that a revocation's keys share a slot (got ${JSON.stringify(prefix)})`)
  }
  if (typeof replica !== 'boolean') throw new TypeError('redisStore: replica must be true or false')
  if (!replica) {
    if (maxLag !== undefined) throw new TypeError('redisStore: maxLag applies only with replica: true')
    return { client, prefix, replica: false }
  }
  if (typeof client.duplicate !== 'function') throw new TypeError('redisStore: replica needs an ioredis client (Redis or Cluster) with duplicate()')
  const seconds = maxLag === undefined ? 1 : toSeconds(maxLag)
  if (seconds === undefined) throw new TypeError(`redisStore: maxLag must be a positive duration: seconds, or a string like '250ms' or '2s' (got ${JSON.stringify(maxLag)})`)
  return { client, prefix, replica: { maxLag: seconds } }
}

/**
 * A revocation store in Redis, through the app's own ioredis client: `check` is one `MGET` (with `replica`, a
 * lookup in this process's memory), revocations are one Lua script each (EVALSHA), and every key expires with the
 * sessions it revokes.
 */
export function redisStore (options: RedisStoreOptions): RevocationStore {
  const { client, prefix, replica: replicaOptions } = resolveRedisOptions(options)
  const keys = { index: `${prefix}r`, stream: `${prefix}x` }
  const replica = replicaOptions === false
    ? undefined
    : createReplica({ connect: () => (client.duplicate as () => ReplicaConnection)(), indexKey: keys.index, streamKey: keys.stream, maxLag: replicaOptions.maxLag })
  const store = { ...revocations(client, prefix, keys, replica), ...sessionLists(client, prefix) }
  if (replica === undefined) return store
  const replicated: RevocationStore = {
    ...store,
    check (sid, sub) {
      checkId('check', 'sid', sid)
      if (sub !== undefined) checkId('check', 'sub', sub)
      return replica.state(sid, sub)
    },
    ready: replica.ready,
    close: replica.close
  }
  // For the tests: the replica's size. Not enumerable, and its key is not exported by the package.
  Object.defineProperty(replicated, kReplica, { value: replica })
  return replicated
}

/** Checks and revocations: the keys of sessions and users, the index and the stream. */
function revocations (client: RedisStoreClient, prefix: string, keys: { index: string, stream: string }, replica: Replica | undefined): Pick<RevocationStore, 'check' | 'revokeSession' | 'revokeUser'> {
  const sessionKey = (sid: string): string => `${prefix}s:${sid}`
  const userKey = (sub: string): string => `${prefix}u:${sub}`
  // What a replica of this process applies at once, before its stream brings it: a logout holds here when it answers.
  const applied = (result: unknown): void => {
    if (replica !== undefined && Array.isArray(result)) replica.apply(String(result[0]), Number(result[1]))
  }
  return {
    async check (sid, sub): Promise<RevocationState> {
      checkId('check', 'sid', sid)
      if (sub !== undefined) checkId('check', 'sub', sub)
      // One round trip whether or not there is a user to check.
      const [session, user] = sub === undefined ? await client.mget(sessionKey(sid)) : await client.mget(sessionKey(sid), userKey(sub))
      const at = user === undefined || user === null ? NaN : Number(user)
      return { sessionRevoked: session !== null, userRevokedAt: Number.isFinite(at) ? at : undefined }
    },

    async revokeSession (sid, ttl) {
      const key = sessionKey(checkId('revokeSession', 'sid', sid))
      applied(await run(client, scripts.revokeSession, [key, keys.index, keys.stream], ttlSeconds('revokeSession', ttl), `s:${sid}`, streamKeep))
    },

    async revokeUser (sub, at, ttl) {
      const key = userKey(checkId('revokeUser', 'sub', sub))
      if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) throw new TypeError('redisStore.revokeUser: at must be a time in seconds since epoch')
      applied(await run(client, scripts.revokeUser, [key, keys.index, keys.stream], String(at), ttlSeconds('revokeUser', ttl), sub, streamKeep))
    }
  }
}

/** The sessions a user can see: listed straight in Redis (not on the request path, so never from a replica). */
function sessionLists (client: RedisStoreClient, prefix: string): Required<Pick<RevocationStore, 'recordSession' | 'listSessions'>> {
  const listKey = (sub: string): string => `${prefix}l:${sub}`
  return {
    async recordSession (sub, session) {
      const key = listKey(checkId('recordSession', 'sub', sub))
      await run(client, scripts.recordSession, [key], session.sid, JSON.stringify(session), String(Date.now() / 1000), maxListedSessions)
    },

    // Two round trips: the list, then the revocations of its sessions and its user (filtered here, not deleted).
    async listSessions (sub) {
      const listed = Object.values(await client.hgetall(listKey(checkId('listSessions', 'sub', sub)))).map((json) => JSON.parse(json) as SessionInfo)
      if (listed.length === 0) return []
      const revoked = await client.mget(`${prefix}u:${sub}`, ...listed.map((session) => `${prefix}s:${session.sid}`))
      const userRevokedAt = revoked[0] === null ? NaN : Number(revoked[0])
      const now = Date.now() / 1000
      return listed.filter((session, index) => revoked[index + 1] === null && !(session.authTime <= userRevokedAt) && session.expiresAt > now)
    }
  }
}
