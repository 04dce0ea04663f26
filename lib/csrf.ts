// The cross-site request guard: unsafe requests that carry the token cookie must come from this site.
// It decides as Go's http.CrossOriginProtection does, from headers browsers set and pages cannot forge.
import { describe, OptionsError } from './errors.js'
import { checkNames, csrfOptions } from './option-names.js'
import type { TokenCookieOptions } from '../types/index.js'

/** Normalised trusted origins, or `false` when the guard is off. */
export type CsrfOptions = { trustedOrigins: ReadonlySet<string> } | false

/** The request headers and facts the guard reads. */
export interface GuardedRequest {
  method: string
  headers: { origin?: string, 'sec-fetch-site'?: string | string[] }
  /** `http` or `https`, as Fastify works it out (with `trustProxy`, from the proxy's headers). */
  protocol: string
  host: string
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS'])

export function resolveCsrf (csrf: TokenCookieOptions['csrf']): CsrfOptions {
  if (csrf === false) return false
  if (csrf === undefined || csrf === true) return { trustedOrigins: new Set() }
  if (csrf === null || typeof csrf !== 'object' || Array.isArray(csrf)) throw new OptionsError('csrf must be false, true or { trustedOrigins }')
  checkNames('csrf', csrf, csrfOptions)
  const origins: unknown = csrf.trustedOrigins ?? []
  if (!Array.isArray(origins)) throw new OptionsError('csrf.trustedOrigins must be a list of origins')
  return {
    trustedOrigins: new Set(origins.map((origin: unknown) => {
      const normalised = typeof origin === 'string' ? normaliseOrigin(origin) : undefined
      if (normalised === undefined) throw new OptionsError(`csrf.trustedOrigins ${describe(origin)} is not an origin like 'https://app.example.com'`)
      return normalised
    }))
  }
}

/**
 * Whether a request that carries the cookie may go on: safe methods pass; then a trusted Origin; then
 * Sec-Fetch-Site; then, from a client that sends no fetch metadata, an Origin (if any) must be this one.
 */
export function crossSiteAllowed (csrf: CsrfOptions, request: GuardedRequest): boolean {
  if (csrf === false || safeMethods.has(request.method)) return true
  const { origin } = request.headers
  if (origin !== undefined && csrf.trustedOrigins.has(normaliseOrigin(origin) ?? '')) return true
  const site = request.headers['sec-fetch-site']
  if (site !== undefined) return site === 'same-origin' || site === 'none'
  return origin === undefined || normaliseOrigin(origin) === normaliseOrigin(`${request.protocol}://${request.host}`)
}

/** `scheme://host[:port]` with the default port dropped, or `undefined` for anything else (`null`, paths). */
export function normaliseOrigin (origin: string): string | undefined {
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return undefined
  }
  const bare = url.pathname === '/' && url.search === '' && url.hash === '' && url.username === '' && !origin.endsWith('/')
  return bare && url.origin !== 'null' ? url.origin : undefined
}
