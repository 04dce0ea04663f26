import createError from '@fastify/error'

// 401s are expected traffic (expired sessions, attackers): no stack trace to capture.
const noStack = false

export const TokenMissingError = createError('FST_TOKEN_COOKIE_MISSING', 'No token on the request', 401, Error, noStack)
export const TokenInvalidError = createError('FST_TOKEN_COOKIE_INVALID', 'Invalid token: %s', 401, Error, noStack)
export const TokenExpiredError = createError('FST_TOKEN_COOKIE_EXPIRED', 'Token expired', 401, Error, noStack)
export const TokenRevokedError = createError('FST_TOKEN_COOKIE_REVOKED', 'Token revoked', 401, Error, noStack)
export const TokenCrossSiteError = createError('FST_TOKEN_COOKIE_CROSS_SITE', 'Cross-site request refused: it carries the session cookie but does not come from this site', 403, Error, noStack)
export const StoreUnavailableError = createError('FST_TOKEN_COOKIE_STORE_UNAVAILABLE', 'The revocation store is unavailable', 503, Error, noStack)
export const TokenTooLargeError = createError('FST_TOKEN_COOKIE_TOO_LARGE', 'The token cookie would be %s bytes, over the 4096 bytes browsers keep', 500)
export const OptionsError = createError('FST_TOKEN_COOKIE_OPTIONS', 'fastify-token-cookie option %s', 500)

export type TokenError =
  | InstanceType<typeof TokenMissingError>
  | InstanceType<typeof TokenInvalidError>
  | InstanceType<typeof TokenExpiredError>
  | InstanceType<typeof TokenRevokedError>
