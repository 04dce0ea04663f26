import createError from '@fastify/error'

// 401s are expected traffic (expired sessions, attackers): no stack trace to capture.
const noStack = false

export const TokenMissingError = createError('FST_TOKEN_COOKIE_MISSING', 'No token on the request', 401, Error, noStack)
export const TokenInvalidError = createError('FST_TOKEN_COOKIE_INVALID', 'Invalid token: %s', 401, Error, noStack)
export const TokenExpiredError = createError('FST_TOKEN_COOKIE_EXPIRED', 'Token expired', 401, Error, noStack)
export const TokenRevokedError = createError('FST_TOKEN_COOKIE_REVOKED', 'Token revoked', 401, Error, noStack)
export const TokenReauthError = createError('FST_TOKEN_COOKIE_REAUTH', 'The login is too old for this action: sign in again', 401, Error, noStack)
export const TokenCrossSiteError = createError('FST_TOKEN_COOKIE_CROSS_SITE', 'Cross-site request refused: it carries the session cookie but does not come from this site', 403, Error, noStack)
/** `isRevoked` threw or rejected with something that is not an Error: the request fails all the same. */
export const RevocationCheckError = createError('FST_TOKEN_COOKIE_CHECK_FAILED', 'The revocation check failed: isRevoked threw %s', 500)
export const StoreUnavailableError = createError('FST_TOKEN_COOKIE_STORE_UNAVAILABLE', 'The revocation store is unavailable', 503, Error, noStack)
export const TokenTooLargeError = createError('FST_TOKEN_COOKIE_TOO_LARGE', 'The token cookie would be %s bytes, over the 4096 bytes browsers keep', 500)
export const OptionsError = createError('FST_TOKEN_COOKIE_OPTIONS', 'fastify-token-cookie option %s', 500)
export const AlreadyRegisteredError = createError(
  'FST_TOKEN_COOKIE_OPTIONS', 'fastify-token-cookie is already registered in this context (or a parent): register it once, at the root', 500
)

export type TokenError =
  | InstanceType<typeof TokenMissingError>
  | InstanceType<typeof TokenInvalidError>
  | InstanceType<typeof TokenExpiredError>
  | InstanceType<typeof TokenRevokedError>
  | InstanceType<typeof TokenReauthError>

/**
 * A value for an error message, whatever it is (a token's header or claim, an option): only its type is trusted.
 * A string is quoted (and cut short); anything else is named by its type, never converted.
 */
export function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}
