// The option names the plugin knows: a misspelled one fails registration, naming the closest known name.
import { OptionsError } from './errors.js'

export const topLevelOptions = [
  'secret', 'policy', 'maxAge', 'absoluteMaxAge', 'renewAfter', 'sessionCookie', 'cookieName', 'cookie', 'sign', 'verify',
  'bearer', 'isRevoked', 'csrf', 'store', 'storeTimeout', 'failOpen', 'expiryHint', 'cacheSize', 'encrypt', 'maxChunks'
] as const
// Fastify hands a plugin its own registration options too.
export const fastifyRegisterOptions = ['prefix', 'logLevel', 'logSerializers'] as const
export const cookieOptions = ['httpOnly', 'secure', 'sameSite', 'path', 'domain', 'partitioned', 'priority'] as const
export const signOptions = ['algorithm', 'iss', 'aud', 'sub', 'typ', 'nonce'] as const
export const verifyOptions = ['allowedIss', 'allowedAud', 'allowedSub', 'allowedJti', 'allowedNonce', 'requiredClaims', 'clockTolerance', 'checkTyp'] as const
export const csrfOptions = ['trustedOrigins'] as const
export const keyOptions = ['kid', 'secret', 'private', 'public', 'algorithm', 'signFrom'] as const
export const loginOptions = ['policy', 'maxAge', 'absoluteMaxAge', 'sessionCookie'] as const
export const verifyTokenOptions = ['optional', 'maxAuthAge'] as const

/** Options of fast-jwt that the plugin sets itself: the lifetime policy owns the times, `secret` the key. */
export const ownedSignOptions = ['key', 'kid', 'jti', 'expiresIn', 'notBefore', 'noTimestamp', 'mutatePayload', 'clockTimestamp', 'header'] as const
export const ownedVerifyOptions = [
  'key', 'algorithms', 'complete', 'cache', 'cacheTTL', 'errorCacheTTL', 'cacheKeyBuilder', 'ignoreExpiration', 'ignoreNotBefore',
  'clockTimestamp', 'maxAge', 'allowedCritHeaders'
] as const

/**
 * Throws `FST_TOKEN_COOKIE_OPTIONS` for the first key of `value` that is neither `known` nor `accepted`, naming
 * the closest known one; `owned` keys are refused as the plugin's own.
 */
export function checkNames (scope: string, value: object, known: readonly string[], owned: readonly string[] = [], accepted: readonly string[] = []): void {
  for (const name of Object.keys(value)) {
    if (known.includes(name) || accepted.includes(name)) continue
    const path = scope === '' ? name : `${scope}.${name}`
    if (owned.includes(name)) throw new OptionsError(`${path} is set by the plugin and cannot be given`)
    const hint = closest(name, known)
    throw new OptionsError(`${path} is not an option${hint === undefined ? '' : `: did you mean ${scope === '' ? hint : `${scope}.${hint}`}?`}`)
  }
}

/** The known name nearest to `name` by edit distance (ignoring case), if any is near enough to be a typo. */
export function closest (name: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]
}
