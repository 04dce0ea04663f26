// fastify-token-cookie/redis: a revocation store on the app's own ioredis client, shared by every instance.
//
// Keys: `<prefix>s:<sid>` (a revoked session, value '1'), `<prefix>u:<sub>` (a user's revocation time, seconds
// since epoch) and `<prefix>l:<sub>` (a user's listed sessions: a hash of sid to JSON, at most 100, expiring with
// the last of them). `sid` and `sub` are used as they are after the prefix: Redis keys are binary-safe, so no value can
// reach outside the prefix or collide with the other kind (`s:` and `u:` come before it). Every key is written
// with a TTL (EX, whole seconds rounded up), so Redis only ever holds live revocations.
//
// ioredis is not imported here: `client` is typed by the few commands this store sends, so the package needs
// neither ioredis nor its types at run time.
import { createHash } from 'node:crypto'
import { maxListedSessions, type RevocationState, type RevocationStore, type SessionInfo } from './lib/store.js'

export type { RevocationState, RevocationStore, SessionInfo } from './lib/store.js'

/**
 * The commands `redisStore` sends; an ioredis `Redis` instance has them. (An ioredis `Cluster` has them too, but
 * a check's `MGET` needs both keys in one slot: give it a hash-tagged prefix such as `'{tc}:'`. Not tested here.)
 */
export interface RedisStoreClient {
  mget: (...keys: string[]) => Promise<Array<string | null>>
  hgetall: (key: string) => Promise<Record<string, string>>
  evalsha: (sha: string, numKeys: number, ...args: Array<string | number>) => Promise<unknown>
  eval: (script: string, numKeys: number, ...args: Array<string | number>) => Promise<unknown>
}

export interface RedisStoreOptions {
  /** The app's ioredis client. Its own `keyPrefix`, if any, comes before `prefix`. */
  client: RedisStoreClient
  /** Prepended to every key; `'tc:'` by default. */
  prefix?: string
}

// A session revocation: SET with the TTL asked for, unless the key already lives longer.
// KEYS[1] session key; ARGV[1] TTL in whole seconds.
const revokeSessionScript = `local ttl = tonumber(ARGV[1])
if redis.call('TTL', KEYS[1]) >= ttl then return 0 end
redis.call('SET', KEYS[1], '1', 'EX', ttl)
return 1`

// A user revocation never moves back in time (instances' clocks differ) nor shortens: the later time and the
// longer TTL win. KEYS[1] user key; ARGV[1] time (seconds since epoch, as a decimal string); ARGV[2] TTL, seconds.
const revokeUserScript = `local at = ARGV[1]
local ttl = tonumber(ARGV[2])
local old = redis.call('GET', KEYS[1])
if old and tonumber(old) and tonumber(old) > tonumber(at) then at = old end
local left = redis.call('TTL', KEYS[1])
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], at, 'EX', ttl)
return 1`

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
async function run (client: RedisStoreClient, { source, sha }: Script, key: string, ...args: Array<string | number>): Promise<void> {
  try {
    await client.evalsha(sha, 1, key, ...args)
  } catch (error) {
    if (!isNoScript(error)) throw error
    await client.eval(source, 1, key, ...args)
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

/**
 * A revocation store in Redis, through the app's own ioredis client: `check` is one `MGET`, revocations are one
 * Lua script each (EVALSHA), and every key expires with the sessions it revokes.
 */
export function redisStore (options: RedisStoreOptions): RevocationStore {
  if (options === null || typeof options !== 'object') throw new TypeError('redisStore: options must be an object: { client, prefix }')
  const { client, prefix = 'tc:' } = options
  if (client === null || typeof client !== 'object' ||
    typeof client.mget !== 'function' || typeof client.hgetall !== 'function' || typeof client.evalsha !== 'function' || typeof client.eval !== 'function') {
    throw new TypeError('redisStore: client must be an ioredis client (with mget, hgetall, eval and evalsha), e.g. new Redis(url)')
  }
  if (typeof prefix !== 'string') throw new TypeError('redisStore: prefix must be a string')
  const sessionKey = (sid: string): string => `${prefix}s:${sid}`
  const userKey = (sub: string): string => `${prefix}u:${sub}`
  const listKey = (sub: string): string => `${prefix}l:${sub}`

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
      await run(client, scripts.revokeSession, sessionKey(checkId('revokeSession', 'sid', sid)), ttlSeconds('revokeSession', ttl))
    },

    async revokeUser (sub, at, ttl) {
      const key = userKey(checkId('revokeUser', 'sub', sub))
      if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) throw new TypeError('redisStore.revokeUser: at must be a time in seconds since epoch')
      await run(client, scripts.revokeUser, key, String(at), ttlSeconds('revokeUser', ttl))
    },

    async recordSession (sub, session) {
      const key = listKey(checkId('recordSession', 'sub', sub))
      await run(client, scripts.recordSession, key, session.sid, JSON.stringify(session), String(Date.now() / 1000), maxListedSessions)
    },

    // Two round trips: the list, then the revocations of its sessions and its user (filtered here, not deleted).
    async listSessions (sub) {
      const listed = Object.values(await client.hgetall(listKey(checkId('listSessions', 'sub', sub)))).map((json) => JSON.parse(json) as SessionInfo)
      if (listed.length === 0) return []
      const revoked = await client.mget(userKey(sub), ...listed.map((session) => sessionKey(session.sid)))
      const userRevokedAt = revoked[0] === null ? NaN : Number(revoked[0])
      const now = Date.now() / 1000
      return listed.filter((session, index) => revoked[index + 1] === null && !(session.authTime <= userRevokedAt) && session.expiresAt > now)
    }
  }
}
