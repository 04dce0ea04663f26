// fastify-token-cookie/redis: a revocation store on the app's own ioredis client, shared by every instance.
//
// Keys: `<prefix>s:<sid>` (a revoked session, value '1') and `<prefix>u:<sub>` (a user's revocation time, seconds
// since epoch). `sid` and `sub` are used as they are after the prefix: Redis keys are binary-safe, so no value can
// reach outside the prefix or collide with the other kind (`s:` and `u:` come before it). Every key is written
// with a TTL (EX, whole seconds rounded up), so Redis only ever holds live revocations.
//
// ioredis is not imported here: `client` is typed by the few commands this store sends, so the package needs
// neither ioredis nor its types at run time.
import { createHash } from 'node:crypto'
import type { RevocationState, RevocationStore } from './lib/store.js'

export type { RevocationState, RevocationStore } from './lib/store.js'

/**
 * The commands `redisStore` sends; an ioredis `Redis` instance has them. (An ioredis `Cluster` has them too, but
 * a check's `MGET` needs both keys in one slot: give it a hash-tagged prefix such as `'{tc}:'`. Not tested here.)
 */
export interface RedisStoreClient {
  mget: (...keys: string[]) => Promise<Array<string | null>>
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

interface Script {
  source: string
  sha: string
}

function script (source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

const scripts = { revokeSession: script(revokeSessionScript), revokeUser: script(revokeUserScript) }

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
    typeof client.mget !== 'function' || typeof client.evalsha !== 'function' || typeof client.eval !== 'function') {
    throw new TypeError('redisStore: client must be an ioredis client (with mget, eval and evalsha), e.g. new Redis(url)')
  }
  if (typeof prefix !== 'string') throw new TypeError('redisStore: prefix must be a string')
  const sessionKey = (sid: string): string => `${prefix}s:${sid}`
  const userKey = (sub: string): string => `${prefix}u:${sub}`

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
    }
  }
}
